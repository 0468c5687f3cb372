"""Jobs as Ray tasks: ``[jobs] executor = "ray"`` or ``--executor ray``.

The job runs where Ray puts it (the cluster at ``$RAY_ADDRESS``, else a local Ray started on
demand) through the same :func:`~modelloop.training.job_context.execute_job` as a local job, so its
records are the same: status transitions, params, metrics, artifacts, lineage and validation rows
go straight from the Ray worker to the workspace's metadata and artifact stores (a worker opens them
from the resolved configuration: the store URL and the artifacts location with its options, so a
PostgreSQL + S3 workspace works across machines, an embedded SQLite one on one machine).

In the Ray worker the job runs as the inline runner runs it (:class:`~modelloop.training.
job_runners.InlineRunner`: its output to a log file, a cancel recorded in the store or a timeout
stopping it by :class:`~modelloop.training.job_context.JobCancelled`). The task is a Ray streaming
generator that yields that log as it grows; the caller appends it to the job's log on its machine,
so ``modelloop jobs logs -f`` and the CLI's trial lines follow a Ray job as they follow a local one.

The caller waits for the task as a local runner waits for its worker: a job cancelled (from any
process) that has not stopped within ``grace`` seconds has its task force-cancelled; a task past
its timeout likewise; a Ray worker that dies, or a task Ray could not run, marks the job failed
with Ray's reason (and its child jobs still running, a tune's trials, failed with it); an
interrupted caller cancels the task with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelloop.common.status import JobStatus
from modelloop.store import MetadataStore
from modelloop.training import job_runners
from modelloop.training.job_kinds import ENV_PLUGINS

#: Seconds a cancelled or overdue job gets to stop itself before its task is force-cancelled.
GRACE = 5.0
#: How often the caller looks for a cancel, and the task for new log lines.
POLL = 0.25


class RayRunner:
    """Each job as a Ray task. ``open_jobs`` is a picklable callable that opens the workspace's
    :class:`~modelloop.training.jobs.Jobs` in the Ray worker (given by the composition root)."""

    def __init__(
        self,
        store: MetadataStore,
        log_path: Callable[[int], Path],
        open_jobs: Callable[[], Any],
        *,
        address: str | None = None,
        grace: float = GRACE,
    ):
        self.store = store
        self.log_path = log_path
        self.open_jobs = open_jobs
        self.address = address
        self.grace = grace
        self._ray = None

    def connect(self) -> None:
        """Reach Ray now (a clear error if it is not installed or its address does not answer),
        before a job record exists for a job that could not run."""
        if self._ray is None:
            from modelloop.common.executors.ray import connect

            self._ray, _ = connect(self.address)

    def run(self, job_id: int, timeout: float | None = None) -> None:
        self.connect()
        ray = self._ray
        job = self.store.get_job(job_id)
        # a job that hands its work to Ray tasks of its own (a tune job's trials) only waits on
        # them: holding a CPU would leave one fewer for them
        cpus = 0 if (job["spec"] or {}).get("executor") == "ray" else 1
        plugins = os.environ.get(ENV_PLUGINS, "")
        stream = _task(ray, cpus).remote(self.open_jobs, job_id, timeout, plugins)
        path = self.log_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        failure: list[BaseException] = []
        with open(path, "ab") as log:
            log.write(f"job {job_id} sent to Ray ({_where(ray)})\n".encode())
            log.flush()
            reader = threading.Thread(target=_drain, args=(ray, stream, log, failure),
                                      name=f"ray-job-{job_id}-log", daemon=True)  # fmt: skip
            reader.start()
            try:
                self._wait(job_id, stream, reader, timeout)
            except BaseException:  # the caller was interrupted: stop the task with it
                self._kill(stream, reader)
                job_runners.finish_abnormal(self.store, job_id,
                                            "the process waiting for it was interrupted")
                raise
        if failure:
            job_runners.finish_abnormal(self.store, job_id, _reason(ray, failure[0]))
        else:  # the task ended without recording the job's end: say so rather than leave it
            job_runners.finish_abnormal(self.store, job_id, "its Ray task ended without "
                                        "recording how the job ended")  # fmt: skip
        self._end_children(job_id)

    def _end_children(self, job_id: int) -> None:
        """Child jobs (a tune's trials) still running when their job's task was killed would
        stay ``running`` forever on a cluster, where no reaper sees their process: fail them."""
        status = self.store.get_job(job_id)["status"]
        if status == JobStatus.SUCCEEDED:
            return
        for status_of_child in (JobStatus.RUNNING, JobStatus.QUEUED):
            for child in self.store.list_jobs(parent_id=job_id, status=status_of_child):
                job_runners.finish_abnormal(self.store, child["id"],
                                            f"its parent job {job_id} ended {status}")

    def _wait(self, job_id: int, stream, reader: threading.Thread, timeout: float | None) -> None:
        """Wait for the task; force-cancel it when a cancel or its timeout has not stopped it
        within the grace period (the job stops itself first: see the inline runner)."""
        started = time.monotonic()
        stopping: float | None = None
        overdue = False
        while True:
            reader.join(POLL)
            if not reader.is_alive():
                return
            if stopping is None:
                overdue = timeout is not None and time.monotonic() - started > timeout
                if overdue or self._cancelled(job_id):
                    stopping = time.monotonic()
            elif time.monotonic() - stopping > self.grace:
                self._kill(stream, reader)
                if overdue:
                    job_runners.finish_abnormal(self.store, job_id,
                                                f"timed out after {timeout:g} s and was killed")
                return

    def _cancelled(self, job_id: int) -> bool:
        try:
            return self.store.get_job(job_id)["status"] == JobStatus.CANCELLED
        except Exception:  # noqa: BLE001 - a store hiccup: look again at the next tick
            return False

    def _kill(self, stream, reader: threading.Thread) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(stream, force=True)
        reader.join(self.grace)


_TASKS: dict[float, Any] = {}


def _task(ray, cpus: float):
    """The job task, made remote once per CPU count (each ``ray.remote`` exports the function)."""
    task = _TASKS.get(cpus)
    if task is None:
        task = _TASKS[cpus] = ray.remote(num_cpus=cpus, max_retries=0)(_run_job)
    return task


def _where(ray) -> str:
    try:
        return f"{ray.get_runtime_context().gcs_address}"
    except Exception:  # noqa: BLE001 - only for the log line
        return "Ray"


def _drain(ray, stream, log, failure: list) -> None:
    """Append what the task yields (its log) to the job's log, until it ends or fails."""
    try:
        for ref in stream:
            log.write(ray.get(ref))
            log.flush()
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
        failure.append(exc)


def _reason(ray, exc: BaseException) -> str:
    """Why the task failed, as a job error: a dead worker or node, a cancel, or Ray's error."""
    errors = ray.exceptions
    if isinstance(exc, errors.RayTaskError) and getattr(exc, "cause", None) is not None:
        exc = exc.cause  # what the task raised
    first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, errors.WorkerCrashedError | errors.NodeDiedError):
        return f"its Ray worker died ({type(exc).__name__}: {first})"
    if isinstance(exc, errors.TaskCancelledError):
        return "its Ray task was cancelled"
    return f"its Ray task failed: {type(exc).__name__}: {first}"


# -- in the Ray worker ------------------------------------------------------------------------------
def _run_job(open_jobs: Callable[[], Any], job_id: int, timeout: float | None,
             plugins: str) -> Iterator[bytes]:
    """The Ray task: run the job as the inline runner does, in a thread, yielding its log as it
    grows. The job kinds' plug-ins the caller knows (``$MODELLOOP_JOB_KINDS``) are loaded here
    too: a worker's environment is the cluster's, not the caller's."""
    if plugins:
        os.environ[ENV_PLUGINS] = plugins
    jobs = open_jobs()
    folder = Path(tempfile.mkdtemp(prefix=f"modelloop-job-{job_id}-"))
    path = folder / "job.log"
    path.touch()
    runner = job_runners.InlineRunner(jobs.store, lambda _job: path, jobs.execute)
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(job_id, timeout)
        except BaseException as exc:  # noqa: BLE001 - raised in the task below
            crashed.append(exc)

    thread = threading.Thread(target=run, name=f"job-{job_id}", daemon=True)
    try:
        with open(path, "rb") as log:
            thread.start()
            while thread.is_alive():
                thread.join(POLL)
                chunk = log.read()
                if chunk:
                    yield chunk
            chunk = log.read()
            if chunk:
                yield chunk
    except BaseException:  # Ray cancelled the task (KeyboardInterrupt): the job ends cancelled
        job_runners.INLINE.interrupt((jobs.store.url, job_id))
        thread.join(GRACE)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if crashed:
        raise crashed[0]
