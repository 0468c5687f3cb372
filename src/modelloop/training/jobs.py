"""Jobs: tracked units of work (train, tune, trial, evaluate, transform, monitor, …).

A job is a row first (``queued``); then a runner (:mod:`modelloop.training.job_runners`) runs it,
in a worker process of its own by default: the job is marked ``running``, reports params, metrics
and artifacts through its recorder, and ends ``succeeded``, ``failed`` or ``cancelled`` (a tuning
trial stopped early by the pruner ends ``pruned``). The caller watches the worker: if it dies (a
crash, ``kill -9``) or overruns its time limit, the caller marks the job failed and keeps its log
— a job never stays "running" forever and never hangs the caller. A job whose caller died too is
reaped the next time jobs are listed on the same machine.

What a kind of job does is a function registered by the package that owns it
(:mod:`modelloop.training.job_kinds`); what it is handed is in :mod:`modelloop.training.job_context`.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from modelloop._faults import pid_alive
from modelloop.artifacts import ArtifactStore
from modelloop.common.paging import check_page
from modelloop.common.status import JobStatus
from modelloop.config import JOB_EXECUTORS as EXECUTORS
from modelloop.errors import ConfigError, InvalidInput, ModelloopError, NotFound, parse_id
from modelloop.store import MetadataStore
from modelloop.training import job_runners
from modelloop.training.job_context import ACTIVE, TERMINAL, JobServices, execute_job, now
from modelloop.training.job_kinds import job_kind
from modelloop.training.job_search import parse_search
from modelloop.training.report import REPORT_DATA

#: Where a job keeps its HTML report (the first found is the report; jobs of earlier versions
#: built it at once, some into the model package).
REPORT_ARTIFACTS = ("report/report.html", "model/extra/report.html")

#: How jobs run: each in a worker process forked warm from the workspace's server (the default
#: where that is safe), in a fresh interpreter, or in the caller's thread (tests, dev).
RUNNERS = ("warm", "process", "inline")


class JobFailed(ModelloopError):
    """A job ended failed or cancelled; the message carries its error and where its log is.

    422 over HTTP: the request was understood and its job ran; how the job ended (a trainer
    that raised, a cancel) is the answer, with the job's id, not an error of the server."""

    status = 422

    def __init__(self, job: dict, log_tail: str = ""):
        self.job = job
        what = "was cancelled" if job["status"] == JobStatus.CANCELLED else "failed"
        super().__init__(
            f"job {job['id']} ({job['kind']}) {what}: {job.get('error') or 'no error recorded'}",
            hint=f"see its log with 'modelloop jobs logs {job['id']}'",
        )
        self.log_tail = log_tail


class Jobs:
    """Submit, run, watch, list, search and cancel jobs.

    ``services`` builds what a job's code may use beyond the store and artifacts (in the process
    that runs it); ``load_kinds(kind)`` imports the modules that register job kinds, given the
    kind about to run (both from the composition root). ``runner`` is one of
    :data:`RUNNERS`. ``executor`` is the workspace's ``[jobs] executor``,
    where training jobs run unless told (:class:`~modelloop.training.service.Training` reads it):
    ``"local"`` (as the runner says) or ``"ray"`` (:mod:`modelloop.training.ray_jobs`;
    ``open_remote`` opens these jobs in a Ray worker).
    """

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        root: Path,
        state_dir: Path,
        *,
        runner: str = "process",
        services: Callable[[], JobServices] = JobServices,
        load_kinds: Callable[[str], None] = lambda kind: None,
        executor: str = "local",
        open_remote: Callable[[], Jobs] | None = None,
    ):
        self.store = store
        self.artifacts = artifacts
        self.root = Path(root)
        self.state_dir = Path(state_dir)
        self.logs_dir = self.state_dir / "logs"
        self._services = services
        self._load_kinds = load_kinds
        self._process = job_runners.ProcessRunner(store, self.root, self.log_path)
        self.executor = executor
        self._open_remote = open_remote
        self._ray = None
        if runner == "warm":
            from modelloop.training import warm_workers

            self._runner = self._process  # where workers cannot be forked safely
            if warm_workers.available():
                self._runner = warm_workers.WarmRunner(
                    store, self.root, self.state_dir, self.log_path, self._process
                )
        elif runner == "process":
            self._runner = self._process
        elif runner == "inline":
            self._runner = job_runners.InlineRunner(store, self.log_path, self.execute)
        else:
            raise ConfigError(
                f"unknown job runner {runner!r}",
                hint=f"use one of {', '.join(RUNNERS)} ([jobs] runner in modelloop.toml, or "
                "$MODELLOOP_JOB_RUNNER)",
            )

    # -- running ------------------------------------------------------------------------------
    def warm_up(self) -> bool:
        """Start this workspace's warm job server in a background thread, for a caller about to
        run jobs (``modelloop demo``): the server's imports (seconds) then overlap the caller's
        own start instead of delaying its first job, which finds the server ready or waits for
        the start under way. False when jobs here run otherwise (cold, inline, on Ray)."""
        from modelloop.training import warm_workers

        if self.executor != "local" or not isinstance(self._runner, warm_workers.WarmRunner):
            return False
        import threading

        threading.Thread(target=self._runner.start_server, name="modelloop-warm-up",
                         daemon=True).start()  # fmt: skip
        return True

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
        executor: str | None = None,
    ) -> dict:
        """Run a job and wait for it; raise :class:`JobFailed` unless it succeeds. It runs where
        ``executor`` says: ``"local"`` (the default: as the runner says) or ``"ray"``."""
        self._load_kinds(kind)
        job_kind(kind)  # an unknown kind fails here, before a record exists
        runner = self._runner_for(executor)  # and Ray that cannot be reached
        job_id = self.store.create_job(
            kind=kind, name=name, spec=spec, params=params or {}, inputs=inputs
        )
        if on_start:
            on_start(job_id)
        runner.run(job_id, timeout)
        self._keep_log(job_id)
        job = self.get(job_id)
        if job["status"] != JobStatus.SUCCEEDED:
            raise JobFailed(job, self.log_tail(job_id))
        return job

    def _runner_for(self, executor: str | None):
        name = executor or "local"
        if name == "local":
            return self._runner
        if name != "ray" or self._open_remote is None:
            raise InvalidInput(f"jobs cannot run on the executor {name!r}",
                               hint=f"use one of {', '.join(EXECUTORS)}")
        if self._ray is None:
            from modelloop.training.ray_jobs import RayRunner

            self._ray = RayRunner(self.store, self.log_path, self._open_remote)
        self._ray.connect()
        return self._ray

    def start(self, job_id: int) -> subprocess.Popen:
        """Start a worker process for the queued job ``job_id`` and return at once."""
        return self._process.start(job_id)

    def execute(
        self,
        job_id: int,
        *,
        cancellable: Callable[[], AbstractContextManager] | None = None,
        log: io.TextIOBase | None = None,
    ) -> str | None:
        """Run the queued job in this process and record how it ended (what a worker process
        does, and the inline runner); its status, or None if it was not queued. What the job
        prints goes to ``log`` (default: standard output)."""
        job = self.store.get_job(job_id)
        self._load_kinds(job["kind"] if job else None)
        return execute_job(
            self.store,
            self.artifacts,
            job_id,
            scratch_root=self.state_dir / "tmp",
            services=self._services,
            cancellable=cancellable or contextlib.nullcontext,
            log=log,
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
                job_runners.finish_abnormal(self.store, job["id"], "its worker process died")
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
        offset: int = 0,
    ) -> list[dict]:
        """Jobs newest first; ``offset`` skips that many (pages of a long list, read by the
        store: the console's job list on a workspace of 10,000 jobs)."""
        check_page(limit, offset)
        jobs = self.store.list_jobs(kind=kind, status=status, parent_id=parent_id, limit=limit,
                                    offset=offset)  # fmt: skip
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
        if name is None or name.rstrip("/") == "report" or name.startswith("report/"):
            self._build_report(self.get(job_id))  # asked for: drawn now, if it was not yet
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
        """The job's self-contained HTML report (train, tune and evaluate jobs have one).

        A job records only what its report shows (:data:`REPORT_DATA`); the report is drawn the
        first time it is asked for and kept as the job's artifacts ``report/…``."""
        job = self.get(job_id)
        found = self._build_report(job)
        if found is not None:
            return self.artifacts.read_bytes(found["digest"])
        raise NotFound(
            f"job {job['id']} ({job['kind']}) has no HTML report",
            hint="train, tune and evaluate jobs write one when they succeed; see what it stored "
            f"with 'modelloop jobs artifacts {job['id']}'",
        )

    def _build_report(self, job: dict) -> dict | None:
        """The job's report artifact, drawn from its recorded data if not yet done; None if the
        job has no report. Drawing the same data gives the same files, so two processes asking
        at once store the same report."""
        import json
        import shutil
        import uuid

        from modelloop.training.report import render

        artifacts = {a["name"]: a for a in self.store.job_artifacts(job["id"])}
        for name in REPORT_ARTIFACTS:
            if name in artifacts:
                return artifacts[name]
        if REPORT_DATA not in artifacts:
            return None
        data = json.loads(self.artifacts.read_bytes(artifacts[REPORT_DATA]["digest"]))
        folder = self.state_dir / "tmp" / f"report-{job['id']}-{uuid.uuid4().hex}"
        try:
            html = render(data, folder)
            # the page last: whoever sees it finds the plots it shows already stored
            for path in [*sorted(folder.glob("*.png")), html]:
                blob = self.artifacts.put_file(path)
                self.store.add_job_artifact(job["id"], f"report/{path.name}", blob.digest,
                                            blob.size)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"name": REPORT_ARTIFACTS[0], "digest": blob.digest, "size": blob.size}

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
        if job["status"] == JobStatus.RUNNING:
            job_runners.stop(self.store, job, grace=grace)
        self.store.update_job(
            job["id"],
            only_if_status=ACTIVE,
            status=JobStatus.CANCELLED,
            error="cancelled by user",
            ended_at=now(),
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
