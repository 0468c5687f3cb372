"""The job worker process: ``python -m modelloop.worker WORKSPACE JOB_ID``.

An entry point (like the CLI), so it may open the :class:`~modelloop.workspace.Workspace`. It runs
one job: marks it running, calls the job kind's function, and records how it ended. SIGTERM ends
the job ``cancelled``. Output goes to the job log (the caller points stdout there).

A worker follows the process that started it (``$MODELLOOP_JOB_PARENT``, else its parent): the
starter waits for the job and acts on its result (``train --register``), so when the starter ends
— Ctrl-C, SIGTERM, even SIGKILL of ``modelloop train`` or ``loop run`` — nobody would act on it
any more, and the worker stops and records the job ``cancelled`` with that reason.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback
from datetime import UTC, datetime

#: Set by :meth:`modelloop.training.jobs.Jobs.start`: the pid of the process the worker follows.
ENV_PARENT = "MODELLOOP_JOB_PARENT"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class _Cancelled(BaseException):
    def __init__(self, reason: str = "cancelled by user"):
        super().__init__(reason)
        self.reason = reason


#: Set once a signal has ended the job: a second one (SIGTERM from a cancelling starter, then
#: SIGHUP as that starter exits) must not interrupt the recording of how the job ended.
_ending = False


def _cancel(reason: str = "cancelled by user") -> None:
    global _ending
    if not _ending:
        _ending = True
        raise _Cancelled(reason)


def _on_sigterm(_signum, _frame):
    _cancel()


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
    from modelloop.errors import ModelloopError
    from modelloop.training.jobs import JobContext, JobRecorder, resolve_kind
    from modelloop.workspace import Workspace

    root, job_id = argv[0], int(argv[1])
    parent = int(os.environ.get(ENV_PARENT) or os.getppid())
    gone = f"the process that started it (pid {parent}) ended before it finished"

    def _on_sighup(_signum, _frame):
        _cancel(gone)

    signal.signal(signal.SIGHUP, _on_sighup)
    # held back until the job runs, so that an early SIGHUP still ends it as 'cancelled'
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    _follow_parent(parent)
    ws = Workspace(root)
    store = ws.store
    if not store.update_job(
        job_id,
        only_if_status=("queued",),
        status="running",
        started_at=datetime.now(UTC),
        host=socket.gethostname(),
        pid=os.getpid(),
    ):
        print(f"job {job_id} is not queued; nothing to do", flush=True)
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    job = store.get_job(job_id)
    recorder = JobRecorder(store, ws.artifacts, job_id)
    recorder.params.update(job["params"])
    ctx = JobContext(
        job_id=job_id,
        store=store,
        artifacts=ws.artifacts,
        datasets=ws.datasets,
        recorder=recorder,
        scratch=ws.config.state_dir / "tmp" / f"job-{job_id}",
        # services a job may use without importing the layers above it
        services={"ensure_baseline": lambda ref, **kw: ws.monitoring.ensure_baseline(ref, **kw)},
    )
    status, error = "succeeded", None
    print(
        f"job {job_id} ({job['kind']}) started on {socket.gethostname()} pid {os.getpid()}",
        flush=True,
    )
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        ctx.scratch.mkdir(parents=True, exist_ok=True)
        resolve_kind(job["kind"])(ctx, job["spec"])
    except _Cancelled as exc:
        status, error = "cancelled", exc.reason
    except ModelloopError as exc:
        status, error = "failed", str(exc)
        print(f"error: {exc}", flush=True)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # record how it ended, whatever happens now
        import shutil

        shutil.rmtree(ctx.scratch, ignore_errors=True)
    try:
        recorder.flush()
    except Exception:  # the job's ending is recorded below all the same
        traceback.print_exc(file=sys.stdout)
    _record_end(ws, store, job_id, status, error)
    print(f"job {job_id} {status}", flush=True)
    ws.close()
    return 0


def _record_end(ws, store, job_id: int, status: str, error: str | None) -> None:
    """Record how the job ended. The signal that ended it may have interrupted this process's
    store connection mid-call, so a failed write is retried on a fresh connection: a worker that
    exits without its record would be reported as having died, losing the real reason."""
    from modelloop.store import open_store

    for attempt in range(3):
        try:
            store.update_job(
                job_id,
                only_if_status=("running",),
                status=status,
                error=error,
                ended_at=datetime.now(UTC),
            )
            return
        except Exception:
            if attempt == 2:
                raise
            traceback.print_exc(file=sys.stdout)
            store = open_store(ws.config.store_url)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
