"""The job worker process: ``python -m modelloop.worker WORKSPACE JOB_ID``; and the warm server
that forks such workers ready-made: ``python -m modelloop.worker --serve WORKSPACE SOCKET
FINGERPRINT IDLE FOLDER`` (:mod:`modelloop.training.warm_server`; a forked worker runs :func:`run_job`
as a cold one does, following its caller through its connection instead of its parent).

An entry point (like the CLI), so it may open the :class:`~modelloop.workspace.Workspace`. It runs
one job (:meth:`~modelloop.training.jobs.Jobs.execute`: marks it running, calls the job kind's
function, records how it ended). SIGTERM ends the job ``cancelled``. Output goes to the job log
(the caller points stdout there).

A worker follows the process that started it (``$MODELLOOP_JOB_PARENT``, else its parent): the
starter waits for the job and acts on its result (``train --register``), so when the starter ends
— Ctrl-C, SIGTERM, even SIGKILL of ``modelloop train`` or ``loop run`` — nobody would act on it
any more, and the worker stops and records the job ``cancelled`` with that reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from modelloop.training.worker_start import ENV_PARENT

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _follow_parent(parent: int) -> None:
    """Get SIGHUP when ``parent`` ends: the kernel sends it on Linux (``PR_SET_PDEATHSIG``, which
    also fires on SIGKILL of the parent); elsewhere a daemon thread watches the parent pid."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it ended before we asked to be told
                os.kill(os.getpid(), signal.SIGHUP)
            return

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGHUP)

    import threading

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serve":
        return _serve(*argv[1:])
    parent = int(os.environ.get(ENV_PARENT) or os.getppid())
    if argv[1] == "-":  # started early (worker_start.prestart): the job's id comes on stdin
        _follow_parent(parent)  # until the job runs, a SIGHUP just ends this process
        _preload_for(argv[2])
        line = sys.stdin.readline()
        if not line.strip():  # no job after all
            return 0
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the job's stdin, as a cold worker's
        return run_job(argv[0], int(line), parent, lambda: _follow_parent(parent))
    return run_job(argv[0], int(argv[1]), parent, lambda: _follow_parent(parent))


def run_job(root: str, job_id: int, parent: int, follow) -> int:
    """Run the job; ``follow()`` arranges a SIGHUP when the process waiting for it (``parent``)
    ends."""
    from modelloop.training.job_context import JobCancelled
    from modelloop.workspace import Workspace

    gone = f"the process that started it (pid {parent}) ended before it finished"
    ending = False  # once a signal has ended the job, a second one must not interrupt its record

    def cancel(reason: str = "cancelled by user") -> None:
        nonlocal ending
        if not ending:
            ending = True
            raise JobCancelled(reason)

    @contextlib.contextmanager
    def cancellable():
        """Signals end the job only while it runs: SIGTERM (a cancel), SIGHUP (the starter died)."""
        signal.signal(signal.SIGTERM, lambda _s, _f: cancel())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # record how it ended, whatever happens

    signal.signal(signal.SIGHUP, lambda _s, _f: cancel(gone))
    # held back until the job runs, so that an early SIGHUP still ends it as 'cancelled'
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    follow()
    ws = Workspace(root)
    ws.jobs.execute(job_id, cancellable=cancellable)
    ws.close()
    return 0


def _serve(root: str, path: str, fingerprint: str, idle: str, home: str) -> int:
    from modelloop.training import warm_server

    return warm_server.serve(root, path, fingerprint=fingerprint, preload=_preload,
                             run_job=run_job, idle=float(idle), home=home)  # fmt: skip


def _preload_for(kind: str) -> None:
    """What a worker started early imports while its caller still checks the request and
    creates the job: the workspace, the store, the kind's module and, for training kinds, the
    libraries every such job reads and fits with. Only what the job would import first thing
    anyway, so this moves the imports earlier and never adds one."""
    from modelloop import workspace

    workspace._load_job_kinds(kind)
    import modelloop.store.sql.store  # noqa: F401 - SQLAlchemy: every job opens the store

    if kind in workspace._TRAINING_KINDS:
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import sklearn.base  # noqa: F401


def _preload() -> None:
    """What the warm server imports before it forks workers: the workspace, every built-in job
    kind and what their jobs import when they run (scikit-learn's estimators, metrics, model
    files), so a forked worker imports next to nothing."""
    from modelloop import workspace

    workspace._load_job_kinds()  # the job kinds the workspace knows
    from modelloop.training import warm_preload  # noqa: F401


if __name__ == "__main__":
    from modelloop.common.exiting import exit_code, exit_now

    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:
        status = exit_code(exc)
    exit_now(status)  # the job is recorded: skip the module teardown the caller would wait for
