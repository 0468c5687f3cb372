"""The running side of a job: what its code is handed, and how one run is recorded.

:func:`execute_job` is the one way a job runs, whichever runner chose the process: a worker
process (:mod:`modelloop.worker`) or the caller's own thread (the inline runner). It marks the
queued job ``running``, calls its kind's function with a :class:`JobContext`, and records how it
ended: ``succeeded``, ``failed`` with the error (the traceback goes to the job log), or
``cancelled`` when :class:`JobCancelled` is raised inside it. The job's standard output is its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from modelloop.artifacts import ArtifactStore
from modelloop.common.status import JobStatus
from modelloop.errors import ModelloopError
from modelloop.store import MetadataStore, open_store
from modelloop.training.job_kinds import job_kind

#: Statuses a job ends in (``pruned`` ends a tuning trial that the pruner stopped early: a normal
#: outcome, not a cancel), and those it has while it may still change.
TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PRUNED)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobCancelled(BaseException):
    """Raised inside a running job to stop it; the job ends ``cancelled`` with :attr:`reason`.

    A ``BaseException``, so that the job's own ``except Exception`` does not swallow it.
    """

    def __init__(self, reason: str = "cancelled by user"):
        super().__init__(reason)
        self.reason = reason


def now() -> datetime:
    return datetime.now(UTC)


class JobRecorder:
    """How running code reports what it does. Metric series are buffered and written in batches."""

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        job_id: int,
        log: TextIO | None = None,
    ):
        self.store = store
        self.artifacts = artifacts
        self.job_id = job_id
        #: Where :meth:`log_text` writes: the job log (None: this process's stdout, a worker's log).
        self.log = log
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.info: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self._series: list[tuple[str, float, int | None]] = []
        self._last_flush = time.monotonic()

    def log_param(self, key: str, value: Any) -> None:
        self.params[key] = value

    def log_params(self, params: dict) -> None:
        self.params.update(params)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """A final scalar (no step) or one point of a series (with a step, e.g. an epoch)."""
        if step is None:
            self.metrics[key] = float(value)
        else:
            self._series.append((key, float(value), int(step)))
            if len(self._series) >= 500 or time.monotonic() - self._last_flush > 1.0:
                self.flush()

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        for k, v in metrics.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.log_metric(k, v, step)

    def log_text(self, text: str) -> None:
        print(text, file=self.log or sys.stdout, flush=True)

    def set_info(self, key: str, value: Any) -> None:
        self.info[key] = value

    def set_output(self, key: str, value: Any) -> None:
        self.outputs[key] = value

    def log_artifact(self, name: str, path: str | os.PathLike) -> str:
        blob = self.artifacts.put_file(path)
        self.store.add_job_artifact(self.job_id, name, blob.digest, blob.size)
        self.outputs.setdefault("artifacts", {})[name] = blob.digest
        return blob.digest

    def flush(self) -> None:
        series, self._series = self._series, []
        self.store.log_job_metrics(self.job_id, series)
        self.store.update_job(
            self.job_id,
            params=self.params,
            metrics=self.metrics,
            info=self.info,
            outputs=self.outputs,
        )
        self._last_flush = time.monotonic()


@dataclass
class JobServices:
    """What a job's code may use beyond the store and artifacts; built by the composition root
    (the workspace) in the process that runs the job, so jobs need not import the layers above."""

    datasets: Any = None  # modelloop.data.datasets.Datasets
    services: dict = field(default_factory=dict)  # e.g. "ensure_baseline"


@dataclass
class JobContext:
    """Everything a job's code may use, handed to it by :func:`execute_job`."""

    job_id: int
    store: MetadataStore
    artifacts: ArtifactStore
    datasets: Any  # modelloop.data.datasets.Datasets
    recorder: JobRecorder
    scratch: Path
    services: dict = field(default_factory=dict)

    def child_job(self, kind: str, name: str | None, spec: dict, params: dict) -> JobRecorder:
        """Start a tracked child job run inside this process (e.g. a tuning trial)."""
        job_id = self.store.create_job(
            kind=kind,
            name=name,
            spec=spec,
            params=params,
            parent_id=self.job_id,
            status=JobStatus.RUNNING,
            inputs=self.store.get_job(self.job_id)["inputs"],
        )
        self.store.update_job(job_id, started_at=now(), host=socket.gethostname(), pid=os.getpid())
        return JobRecorder(self.store, self.artifacts, job_id, self.recorder.log)

    def end_child(
        self, recorder: JobRecorder, status: str = JobStatus.SUCCEEDED, error: str | None = None
    ) -> None:
        recorder.flush()
        self.store.update_job(recorder.job_id, status=status, error=error, ended_at=now())


def execute_job(
    store: MetadataStore,
    artifacts: ArtifactStore,
    job_id: int,
    *,
    scratch_root: Path,
    services: Callable[[], JobServices],
    cancellable: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    log: TextIO | None = None,
) -> str | None:
    """Run the queued job ``job_id`` in this process and record how it ended; its status, or
    None if it was not queued (another runner took it, or it was cancelled first).

    ``cancellable()`` is entered once the job is marked running and left before its end is
    recorded: the window in which the runner may raise :class:`JobCancelled` inside it.
    Anything else that is not an ``Exception`` (KeyboardInterrupt) is left to the runner.
    What it prints goes to ``log`` (default: standard output, which is a worker's job log).
    """
    out = log if log is not None else sys.stdout
    if not store.update_job(
        job_id,
        only_if_status=(JobStatus.QUEUED,),
        status=JobStatus.RUNNING,
        started_at=now(),
        host=socket.gethostname(),
        pid=os.getpid(),
    ):
        print(f"job {job_id} is not queued; nothing to do", file=out, flush=True)
        return None
    scratch = Path(scratch_root) / f"job-{job_id}"
    job = store.get_job(job_id)
    recorder = JobRecorder(store, artifacts, job_id, log)
    recorder.params.update(job["params"])
    status, error = JobStatus.SUCCEEDED, None
    try:
        with cancellable():
            print(
                f"job {job_id} ({job['kind']}) started on {socket.gethostname()} pid {os.getpid()}",
                file=out,
                flush=True,
            )
            run = job_kind(job["kind"])
            given = services()
            ctx = JobContext(job_id=job_id, store=store, artifacts=artifacts,
                             datasets=given.datasets, recorder=recorder, scratch=scratch,
                             services=given.services)  # fmt: skip
            scratch.mkdir(parents=True, exist_ok=True)
            run(ctx, job["spec"])
    except JobCancelled as exc:
        status, error = JobStatus.CANCELLED, exc.reason
    except ModelloopError as exc:
        status, error = JobStatus.FAILED, str(exc)
        print(f"error: {exc}", file=out, flush=True)
    except Exception as exc:
        status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        recorder.flush()
    except Exception:  # the job's ending is recorded below all the same
        traceback.print_exc(file=out)
    _record_end(store, job_id, status, error, out)
    print(f"job {job_id} {status}", file=out, flush=True)
    return status


def _record_end(
    store: MetadataStore, job_id: int, status: str, error: str | None, out: TextIO
) -> None:
    """Record how the job ended. A signal that ended it may have interrupted the store connection
    mid-call, so a failed write is retried on a fresh connection: a job whose end is not recorded
    would be reported as having died, losing the real reason."""
    for attempt in range(3):
        try:
            store.update_job(
                job_id, only_if_status=(JobStatus.RUNNING,), status=status, error=error, ended_at=now()
            )
            return
        except Exception:
            if attempt == 2:
                raise
            traceback.print_exc(file=out)
            store = open_store(store.url)
