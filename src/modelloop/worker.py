"""The job worker process: ``python -m modelloop.worker WORKSPACE JOB_ID``.

An entry point (like the CLI), so it may open the :class:`~modelloop.workspace.Workspace`. It runs
one job: marks it running, calls the job kind's function, and records how it ended. SIGTERM ends
the job ``cancelled``. Output goes to the job log (the caller points stdout there).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback
from datetime import UTC, datetime


class _Cancelled(BaseException):
    pass


def _on_sigterm(_signum, _frame):
    raise _Cancelled()


def main(argv: list[str]) -> int:
    from modelloop.errors import ModelloopError
    from modelloop.training.jobs import JobContext, JobRecorder, resolve_kind
    from modelloop.workspace import Workspace

    root, job_id = argv[0], int(argv[1])
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
        services={"ensure_baseline": lambda ref: ws.monitoring.ensure_baseline(ref)},
    )
    status, error = "succeeded", None
    print(
        f"job {job_id} ({job['kind']}) started on {socket.gethostname()} pid {os.getpid()}",
        flush=True,
    )
    try:
        ctx.scratch.mkdir(parents=True, exist_ok=True)
        resolve_kind(job["kind"])(ctx, job["spec"])
    except _Cancelled:
        status, error = "cancelled", "cancelled by user"
    except ModelloopError as exc:
        status, error = "failed", str(exc)
        print(f"error: {exc}", flush=True)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stdout)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import shutil

        shutil.rmtree(ctx.scratch, ignore_errors=True)
    try:
        recorder.flush()
    finally:
        store.update_job(
            job_id,
            only_if_status=("running",),
            status=status,
            error=error,
            ended_at=datetime.now(UTC),
        )
    print(f"job {job_id} {status}", flush=True)
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
