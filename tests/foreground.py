"""Starting a command as a user's terminal runs it in the foreground, where Ctrl-C reaches it.

A process started in the background of a non-interactive shell (``nohup pytest &``, a CI
runner's script) has SIGINT and SIGQUIT ignored, and its children inherit that: Python then
installs no KeyboardInterrupt handler, so a command under test would rightly ignore a SIGINT
that a terminal's Ctrl-C would have delivered. Tests of Ctrl-C start the command with
``preexec_fn=foreground``, whatever way the suite itself was started.
"""

from __future__ import annotations

import signal


def foreground() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
