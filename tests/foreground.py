"""Starting a command as a user's terminal runs it in the foreground, where Ctrl-C reaches it.

A process started in the background of a non-interactive shell (``nohup pytest &``, a CI
runner's script) has SIGINT and SIGQUIT ignored, and its children inherit that: Python then
installs no KeyboardInterrupt handler, so a command under test would rightly ignore a SIGINT
that a terminal's Ctrl-C would have delivered. Tests of Ctrl-C start the command with
``preexec_fn=foreground``, whatever way the suite itself was started; :func:`stop_command` then
signals it and waits for everything it started to end.
"""

from __future__ import annotations

import os
import signal
import time


def foreground() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:  # a zombie has ended too
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition, limit: float = 120):
    """Poll until ``condition()`` is truthy (bounded, so a broken build fails instead of hanging)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still not true after {limit:g} s: {condition}")


def stop_command(command, sig: int, ws, job: dict) -> dict:
    """Send ``sig`` to ``command`` (a Popen running a job), wait for it and for the job's worker
    to end, and return the job's record once it no longer says running."""
    os.kill(command.pid, sig)
    command.wait(120)
    wait_for(lambda: not alive(job["pid"]))
    return wait_for(lambda: (j := ws.jobs.get(job["id"]))["status"] != "running" and j)
