"""Ending a command or worker process quickly: everything Python's exit does that anyone can
observe, minus tearing down every module.

After a command has printed its answer, a normal interpreter exit still deallocates every object
of pandas, scikit-learn, SciPy, pyarrow… one by one: about 0.1-0.3 s on an idle machine, several
seconds on a loaded one (measured: 0.3 s with ``os._exit`` against 6-12 s for a normal exit of a
process holding those libraries, at a load average of 16), paid by every CLI command and, on the
critical path of every job, by every job worker. Nobody needs that memory handed back
piecemeal: the kernel reclaims it at once.

:func:`exit_now` keeps what matters of a normal exit, in its order: it waits for non-daemon
threads, runs the ``atexit`` handlers (multiprocessing reaps its children, executors shut down,
coverage saves its data), flushes the standard streams, and then ends the process.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_code(exc: SystemExit) -> int:
    """The status ``SystemExit`` would end the process with (a message is printed, status 1)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _join_threads() -> None:
    """What the interpreter does first at exit: run the threading exit hooks (they tell thread
    and process pools to stop: a pool's threads wait for that), then join non-daemon threads."""
    if threading.current_thread() is threading.main_thread() and hasattr(threading, "_shutdown"):
        threading._shutdown()  # CPython's own: exactly the interpreter's order
        return
    for hook in getattr(threading, "_threading_atexits", ()):  # pragma: no cover - not CPython
        hook()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` as ``sys.exit`` would, without the module teardown."""
    _join_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head) or stream: nothing left to say
            pass
    os._exit(code)
