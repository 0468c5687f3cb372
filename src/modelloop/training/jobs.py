"""Jobs: tracked units of work (train, tune, trial, evaluate, …), each run in a worker process.

A job is a row first (``queued``), then a worker process marks it ``running``, reports params,
metrics and artifacts through a :class:`JobRecorder`, and ends it ``succeeded``, ``failed`` or
``cancelled`` (a tuning trial stopped early by the pruner ends ``pruned``). The caller watches the worker: if it dies (a crash, ``kill -9``) or overruns its
time limit, the caller marks the job failed and keeps its log — a job never stays "running"
forever and never hangs the caller. A job whose caller died too is reaped the next time jobs are
listed on the same machine.

What a kind of job does is a function ``run(ctx: JobContext, spec: dict) -> None`` found through
:data:`JOB_KINDS`, so later kinds (transform, monitor) plug in without touching this file's logic.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from modelloop._faults import pid_alive
from modelloop.artifacts import ArtifactStore
from modelloop.errors import InvalidInput, ModelloopError, NotFound, parse_id
from modelloop.store import MetadataStore

#: ``pruned`` ends a tuning trial that the pruner stopped early: a normal outcome, not a cancel.
TERMINAL = ("succeeded", "failed", "cancelled", "pruned")
ACTIVE = ("queued", "running")
#: Where a job keeps its HTML report (the first found is the report).
REPORT_ARTIFACTS = ("report/report.html", "model/extra/report.html")

#: kind -> "module:function" run inside the worker process.
JOB_KINDS: dict[str, str] = {
    "train": "modelloop.training.service:run_train_job",
    "tune": "modelloop.training.service:run_tune_job",
    "evaluate": "modelloop.training.service:run_evaluate_job",
    "transform": "modelloop.batch.transform:run_transform_job",
    "monitor": "modelloop.monitoring.service:run_monitor_job",
    "sleep": "modelloop.training.jobs:run_sleep_job",  # for tests and demos of cancel/kill
    "fail": "modelloop.training.jobs:run_fail_job",
}


class JobFailed(ModelloopError):
    """A job ended failed or cancelled; the message carries its error and where its log is."""

    status = 500

    def __init__(self, job: dict, log_tail: str = ""):
        self.job = job
        what = "was cancelled" if job["status"] == "cancelled" else "failed"
        super().__init__(
            f"job {job['id']} ({job['kind']}) {what}: {job.get('error') or 'no error recorded'}",
            hint=f"see its log with 'modelloop jobs logs {job['id']}'",
        )
        self.log_tail = log_tail


def _now() -> datetime:
    return datetime.now(UTC)


class JobRecorder:
    """How running code reports what it does. Metric series are buffered and written in batches."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, job_id: int):
        self.store = store
        self.artifacts = artifacts
        self.job_id = job_id
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
        print(text, flush=True)  # the worker's stdout is the job log

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
class JobContext:
    """Everything a job's code may use, handed to it by the worker."""

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
            status="running",
            inputs=self.store.get_job(self.job_id)["inputs"],
        )
        self.store.update_job(job_id, started_at=_now(), host=socket.gethostname(), pid=os.getpid())
        return JobRecorder(self.store, self.artifacts, job_id)

    def end_child(
        self, recorder: JobRecorder, status: str = "succeeded", error: str | None = None
    ) -> None:
        recorder.flush()
        self.store.update_job(recorder.job_id, status=status, error=error, ended_at=_now())


class Jobs:
    """Submit, run, watch, list, search and cancel jobs."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, root: Path, state_dir: Path):
        self.store = store
        self.artifacts = artifacts
        self.root = Path(root)
        self.logs_dir = Path(state_dir) / "logs"

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        kind: str,
        spec: dict,
        *,
        name: str | None = None,
        params: dict | None = None,
        inputs: list | None = None,
        timeout: float | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> dict:
        """Run a job in a worker process and wait for it; raise :class:`JobFailed` unless it succeeds."""
        if kind not in JOB_KINDS:
            raise InvalidInput(
                f"unknown job kind {kind!r}", hint=f"known kinds: {', '.join(JOB_KINDS)}"
            )
        job_id = self.store.create_job(
            kind=kind, name=name, spec=spec, params=params or {}, inputs=inputs
        )
        if on_start:
            on_start(job_id)
        return self.wait(job_id, self.start(job_id), timeout=timeout)

    def start(self, job_id: int) -> subprocess.Popen:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(job_id), "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelloop.worker", str(self.root), str(job_id)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # the worker follows this process: see modelloop.worker
                env={**os.environ, "PYTHONUNBUFFERED": "1",
                     "MODELLOOP_JOB_PARENT": str(os.getpid())},
            )
        finally:
            log.close()
        self.store.update_job(job_id, host=socket.gethostname(), pid=proc.pid)
        return proc

    def wait(self, job_id: int, proc: subprocess.Popen, *, timeout: float | None = None) -> dict:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc.pid)
            proc.wait()
            self._finish_abnormal(job_id, f"timed out after {timeout:g} s and was killed")
        except BaseException:  # the caller was interrupted: stop the worker with it
            self._kill(proc.pid)
            proc.wait()
            self._finish_abnormal(job_id, "the process waiting for it was interrupted")
            raise
        else:
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                self._finish_abnormal(job_id, f"its worker process {how}")
        self._keep_log(job_id)
        job = self.get(job_id)
        if job["status"] != "succeeded":
            raise JobFailed(job, self.log_tail(job_id))
        return job

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def _finish_abnormal(self, job_id: int, error: str) -> None:
        self.store.update_job(
            job_id, only_if_status=ACTIVE, status="failed", error=error, ended_at=_now()
        )

    def _keep_log(self, job_id: int) -> None:
        """Copy the finished log into the artifact store (so it outlives this machine's disk)."""
        path = self.log_path(job_id)
        if path.exists():
            blob = self.artifacts.put_file(path)
            self.store.update_job(job_id, log_digest=blob.digest)

    # -- reading ------------------------------------------------------------------------------
    def log_path(self, job_id: int) -> Path:
        return self.logs_dir / f"job-{job_id}.log"

    def get(self, job_id: int | str) -> dict:
        job_id = parse_id(job_id, "job", prefix="job-")
        job = self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", hint="list jobs with 'modelloop jobs list'")
        if job["status"] in ACTIVE:
            job = self._reap(job)
        return job

    def _reap(self, job: dict) -> dict:
        """A running job whose worker is gone (on this machine) failed."""
        if job["host"] == socket.gethostname() and job["pid"] and not pid_alive(job["pid"]):
            # the worker may have just finished: re-read before deciding
            fresh = self.store.get_job(job["id"])
            if fresh["status"] in ACTIVE:
                self._finish_abnormal(job["id"], "its worker process died")
                self._keep_log(job["id"])
            return self.store.get_job(job["id"])
        return job

    def list(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        parent_id: int | None = None,
        limit: int | None = 50,
    ) -> list[dict]:
        jobs = self.store.list_jobs(kind=kind, status=status, parent_id=parent_id, limit=limit)
        return [self._reap(j) if j["status"] in ACTIVE else j for j in jobs]

    def logs(self, job_id: int | str) -> str:
        job = self.get(job_id)
        path = self.log_path(job["id"])
        if job["status"] in ACTIVE and path.exists():
            return path.read_text(errors="replace")
        if job["log_digest"]:
            return self.artifacts.read_bytes(job["log_digest"]).decode(errors="replace")
        return path.read_text(errors="replace") if path.exists() else ""

    def follow(self, job_id: int | str, *, poll: float = 0.2, skip: bool = False) -> Iterator[str]:
        """The job's log lines as they are written, until the job ends (``jobs logs --follow``).

        Reads this machine's log file from where it left off (with ``skip``, from its current
        end); a job running elsewhere is followed through its stored log once it ends.
        """
        job = self.get(job_id)
        tail = LogTail(self.log_path(job["id"]))
        if skip:
            tail.skip_to_end()
        while job["status"] in ACTIVE:
            yield from tail.lines()
            time.sleep(poll)
            job = self.get(job["id"])
        if not skip and tail.offset == 0 and not self.log_path(job["id"]).exists():
            yield from self.logs(job["id"]).splitlines()
            return
        yield from tail.lines(final=True)

    def log_tail(self, job_id: int, lines: int = 20) -> str:
        try:
            return "\n".join(self.logs(job_id).splitlines()[-lines:])
        except ModelloopError:
            return ""

    def metric_series(self, job_id: int | str) -> list[dict]:
        return self.store.job_metric_series(self.get(job_id)["id"])

    def artifacts_of(self, job_id: int | str) -> list[dict]:
        return self.store.job_artifacts(self.get(job_id)["id"])

    def select_artifacts(self, job_id: int | str, name: str | None = None) -> list[dict]:
        """The job's artifacts: all, the one called ``name``, or those in folder ``name``."""
        job = self.get(job_id)
        found = self.store.job_artifacts(job["id"])
        if name is None:
            return found
        exact = [a for a in found if a["name"] == name]
        folder = name.rstrip("/") + "/"
        chosen = exact or [a for a in found if a["name"].startswith(folder)]
        if not chosen:
            names = [a["name"] for a in found]
            folders = {n.rsplit("/", 1)[0] for n in names if "/" in n}
            close = difflib.get_close_matches(name, [*sorted(folders), *names], n=1)
            raise NotFound(
                f"job {job['id']} has no artifact {name!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"list them with 'modelloop jobs artifacts {job['id']}'"
                if names
                else f"job {job['id']} stored no artifacts",
            )
        return chosen

    def download(
        self, job_id: int | str, dest: str | os.PathLike, name: str | None = None
    ) -> list[Path]:
        """Copy the job's artifacts (all, one, or a folder such as ``model``) under ``dest``.

        Each keeps its name as a path below ``dest`` (``model/model.json``); each is checked
        against its hash on the way out.
        """
        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise InvalidInput(f"{dest} is a file", hint="download into a folder (-o DIR)")
        root = dest.resolve()
        written = []
        for artifact in self.select_artifacts(job_id, name):
            target = (root / artifact["name"]).resolve()
            if not target.is_relative_to(root):  # names come from jobs; never write outside dest
                raise InvalidInput(
                    f"artifact name {artifact['name']!r} leaves the folder",
                    hint="this artifact cannot be downloaded by name",
                )
            written.append(self.artifacts.fetch(artifact["digest"], target))
        return written

    def report(self, job_id: int | str) -> bytes:
        """The job's self-contained HTML report (train, tune and evaluate jobs write one)."""
        job = self.get(job_id)
        for artifact in self.store.job_artifacts(job["id"]):
            if artifact["name"] in REPORT_ARTIFACTS:
                return self.artifacts.read_bytes(artifact["digest"])
        raise NotFound(
            f"job {job['id']} ({job['kind']}) has no HTML report",
            hint="train, tune and evaluate jobs write one when they succeed; see what it stored "
            f"with 'modelloop jobs artifacts {job['id']}'",
        )

    def search(
        self, expression: str, *, kind: str | None = None, limit: int | None = None
    ) -> list[dict]:
        """Jobs matching e.g. ``"metrics.roc_auc > 0.8 and params.max_depth = 5"``."""
        conditions = parse_search(expression)
        out = [j for j in self.list(kind=kind, limit=None) if all(c(j) for c in conditions)]
        return out[:limit] if limit else out

    def compare(self, job_ids: list[int | str]) -> dict:
        """Params and metrics of several jobs side by side: ``{"jobs": [...], "params": {...}, "metrics": {...}}``."""
        jobs = [self.get(j) for j in job_ids]
        keys_p = sorted({k for j in jobs for k in j["params"]})
        keys_m = sorted({k for j in jobs for k in j["metrics"]})
        return {
            "jobs": [j["id"] for j in jobs],
            "params": {k: [j["params"].get(k) for j in jobs] for k in keys_p},
            "metrics": {k: [j["metrics"].get(k) for j in jobs] for k in keys_m},
        }

    # -- cancelling ---------------------------------------------------------------------------
    def cancel(self, job_id: int | str, *, grace: float = 5.0) -> dict:
        job = self.get(job_id)
        if job["status"] in TERMINAL:
            raise InvalidInput(
                f"job {job['id']} already {job['status']}",
                hint="only queued or running jobs can be cancelled",
            )
        if job["status"] == "running" and job["pid"] and job["host"] == socket.gethostname():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job["pid"], signal.SIGTERM)  # the worker ends the job 'cancelled'

            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and pid_alive(job["pid"]):
                if self.store.get_job(job["id"])["status"] in TERMINAL:
                    break
                time.sleep(0.05)
            if pid_alive(job["pid"]) and self.store.get_job(job["id"])["status"] in ACTIVE:
                self._kill(job["pid"])
        self.store.update_job(
            job["id"],
            only_if_status=ACTIVE,
            status="cancelled",
            error="cancelled by user",
            ended_at=_now(),
        )
        return self.store.get_job(job["id"])


class LogTail:
    """Reads the complete lines added to a growing log file since the last read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def skip_to_end(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.offset = self.path.stat().st_size

    def lines(self, *, final: bool = False) -> list[str]:
        """New complete lines (with ``final``, also an unterminated last line)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        *done, self._partial = data.split(b"\n")
        if final and self._partial:
            done.append(self._partial)
            self._partial = b""
        return [line.decode(errors="replace") for line in done]


# -- search expressions ----------------------------------------------------------------------------
_COND = re.compile(
    r"^\s*(metrics|params|info|status|kind|name)(?:\.([\w.\-]+))?\s*(>=|<=|!=|==|=|>|<)\s*(.+?)\s*$"
)
_OPS = {
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def parse_search(expression: str) -> list[Callable[[dict], bool]]:
    """Parse ``field op value [and …]`` into predicates over a job record."""
    conditions = []
    for part in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        m = _COND.match(part)
        if not m:
            raise InvalidInput(
                f"cannot read the search condition {part!r}",
                hint='write e.g. "metrics.roc_auc > 0.8 and params.max_depth = 5" '
                "(fields: metrics.X, params.X, info.X, status, kind, name)",
            )
        section, key, op, raw = m.groups()
        value = _literal(raw)

        def predicate(job, section=section, key=key, op=op, value=value):
            got = job.get(section) if key is None else (job.get(section) or {}).get(key)
            if got is None:
                return False
            try:
                return _OPS[op](got, value)
            except TypeError:
                return _OPS[op](str(got), str(value))

        conditions.append(predicate)
    return conditions


def _literal(raw: str):
    raw = raw.strip().strip("'\"")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


# -- tiny kinds used by tests and docs -------------------------------------------------------------
def run_sleep_job(ctx: JobContext, spec: dict) -> None:
    """Sleep (reporting a heartbeat metric each step): lets tests cancel or kill a running job."""
    for step in range(int(spec.get("steps", 10))):
        ctx.recorder.log_metric("heartbeat", step, step=step)
        ctx.recorder.log_text(f"step {step}")
        time.sleep(float(spec.get("seconds", 0.1)))
    ctx.recorder.log_metric("steps", int(spec.get("steps", 10)))


def run_fail_job(ctx: JobContext, spec: dict) -> None:
    ctx.recorder.log_text("about to fail")
    raise RuntimeError(spec.get("message", "this job fails on purpose"))


def resolve_kind(kind: str) -> Callable[[JobContext, dict], None]:
    module, _, func = JOB_KINDS[kind].partition(":")
    return getattr(import_module(module), func)
