"""Batch transform: score files or a dataset version with a registered model, as a tracked job.

    ws.transforms.run("churn@champion", "s3://bucket/today/", "scores.parquet", proba=True)

How it runs:

1. *Plan* (in the caller): the model reference is resolved to a version, the input expanded to
   files (or a dataset version's parts), their columns checked against the model's signature and
   the options, the output location checked writable, and the input cut into chunks
   (:mod:`modelloop.batch.sources`). The plan and the options hash to the *transform key*.
2. *Score* (in a job worker): chunks not yet recorded under the key are scored by N worker
   processes or Ray tasks (:mod:`modelloop.batch.scoring`); each finished chunk's output part and
   failed rows become blobs, then a chunk record — so a killed transform loses at most the chunks
   in flight, and a rerun of the same command, or ``resume``, skips the rest.
3. *Assemble*: the parts are written, in chunk order, to a temporary name beside the output and
   renamed into place (an object store commits the upload when it completes), so the output is
   whole or absent, and byte-identical however often the transform was interrupted.

Jobs end ``succeeded``, ``failed`` or ``cancelled``. A transform whose rows all scored records
``outputs.status = "completed"``; one where some rows failed (and went to the error file)
still succeeds as a job, with ``outputs.status = "completed_with_errors"`` and the count in
``outputs.error_rows`` — the rows that could be scored are delivered, the others are accounted for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from modelloop.batch import sources
from modelloop.batch.plan import make_plan
from modelloop.common.status import JobStatus, TransformStatus
from modelloop.errors import InvalidInput
from modelloop.tabular.locations import filesystem, is_remote
from modelloop.training.job_kinds import register_job_kind

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.data.datasets import Datasets
    from modelloop.registry.registry import Registry
    from modelloop.store.interfaces import BatchStore
    from modelloop.training.jobs import Jobs



@pydantic_dataclass(config=ConfigDict(extra="forbid", allow_inf_nan=False))
class TransformOptions:
    """How to transform; the SageMaker names are given where they have one. Numbers are checked
    finite and in range here, for the SDK and the CLI alike (``chunk_mb=0`` made 1-byte chunks)."""

    input_filter: list[str] | None = None  # InputFilter: the columns fed to the model
    output_filter: list[str] | None = None  # OutputFilter: the columns written
    join_source: str = "none"  # JoinSource: "input" writes the input columns before predictions
    id_column: str | None = None  # passed through to the output (and the error file)
    proba: bool = False  # also write class probabilities (proba_<class>)
    input_format: str | None = None
    output_format: str | None = None  # default: from the output's suffix, else the input's
    # text input: bytes per chunk (larger: more memory per worker)
    chunk_mb: float = Field(16.0, ge=0.001, le=4096)
    # Parquet input: rows per chunk (whole row groups)
    chunk_rows: int = Field(250_000, ge=1, le=1_000_000_000)
    # rows predicted at once inside a chunk (bounds memory)
    batch_rows: int = Field(100_000, ge=1, le=100_000_000)
    max_errors_per_chunk: int = Field(1000, ge=0, le=1_000_000_000)

    def key_fields(self) -> dict:
        return asdict(self)


def _options(options: dict) -> TransformOptions:
    """Checked options; InvalidInput names the option, its value and the range."""
    try:
        return TransformOptions(**options)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"transform option {field} {err.get('input')!r}: "
                           f"{err['msg'][0].lower()}{err['msg'][1:]}",
                           hint="see 'modelloop transform --help'") from None


def _workers(workers) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise InvalidInput(f"workers must be a whole number from 1 to 1024, not {workers!r}",
                           hint="e.g. --workers 4")
    return workers


@dataclass
class TransformResult:
    """What a finished transform did."""

    job_id: int
    status: str  # completed | completed_with_errors
    output: str
    rows: int
    error_rows: int
    errors_file: str | None
    chunks: int
    chunks_skipped: int
    seconds: float
    model: str
    job: dict = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("job")
        return out


class Transforms:
    """Batch transforms of one workspace (``ws.transforms``).

    Given what it uses, never the workspace: the batch records of the store, the artifact store
    (whose S3 options serve ``s3://`` input and output too), jobs to run the ``transform`` job
    kind, the registry to resolve and check models, datasets for ``dataset:NAME@V`` input.
    """

    def __init__(self, *, store: BatchStore, artifacts: ArtifactStore, jobs: Jobs,
                 models: Registry, datasets: Datasets):
        self.store, self.artifacts = store, artifacts
        self.jobs, self.models, self.datasets = jobs, models, datasets

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        model: str,
        input: str | list[str],
        output: str,
        *,
        workers: int | None = None,
        executor: str = "processes",
        ray_address: str | None = None,
        errors_file: str | None = None,
        progress: Callable[[dict], None] | None = None,
        force: bool = False,
        reason: str | None = None,
        **options,
    ) -> TransformResult:
        """Score ``input`` with ``model`` into ``output``; resumes an interrupted identical run.

        A model version that is not approved is refused unless ``force`` (recorded in the job's
        spec with ``reason``, and warned about). ``progress``, if given, is called about three
        times a second with
        ``{"rows", "error_rows", "chunks", "total_chunks", "input_bytes", "total_bytes"}``.
        """
        opts = _options(options)
        _workers(workers)
        spec = self.plan(model, input, output, opts, errors_file=errors_file, force=force,
                         reason=reason)
        return self._execute(spec, workers, executor, ray_address, progress)

    def resume(
        self,
        job_id: int | str,
        *,
        workers: int | None = None,
        executor: str = "processes",
        ray_address: str | None = None,
        progress: Callable[[dict], None] | None = None,
    ) -> TransformResult:
        """Run an interrupted (or finished) transform job again; finished chunks are skipped."""
        job = self.jobs.get(job_id)
        if job["kind"] != "transform":
            raise InvalidInput(
                f"job {job['id']} is {'an' if job['kind'][:1] in 'aeiou' else 'a'} "
                f"{job['kind']} job, not a transform",
                hint="list transforms with 'modelloop jobs list --kind transform'",
            )
        spec = dict(job["spec"])
        if job["status"] == JobStatus.SUCCEEDED and _exists(spec["output"],
                                                            spec["storage_options"]):
            return self._finished(job)  # nothing left to do: its result, not a new job
        for f in spec.get("files", []):
            now = {(g.path, g.size, g.version) for g in sources.find_inputs(f["path"], f["format"],
                                                                          spec["storage_options"])}
            if (f["path"], f["size"], f["version"]) not in now:
                raise InvalidInput(
                    f"input '{f['path']}' changed since job {job['id']} planned it",
                    hint="its chunks no longer match; run the transform again as a new one",
                )
        spec["resumes"] = job["id"]
        return self._execute(spec, workers, executor, ray_address, progress)

    @staticmethod
    def _finished(job: dict) -> TransformResult:
        spec, out = job["spec"], job["outputs"]
        return TransformResult(
            job_id=job["id"], status=out["status"], output=spec["output"], rows=out["rows"],
            error_rows=out["error_rows"], errors_file=out.get("errors_file"),
            chunks=len(spec["chunks"]), chunks_skipped=len(spec["chunks"]), seconds=0.0,
            model=spec["model"], job=job,
        )

    def status(self, job_id: int | str) -> dict:
        """A transform job with its chunk progress."""

        job = self.jobs.get(job_id)
        spec = job["spec"]
        done = self.store.transform_progress(spec["key"])
        return {"job": job, "total_chunks": len(spec["chunks"]), **done}

    def _execute(self, spec, workers, executor, ray_address, progress) -> TransformResult:
        from modelloop.common import executors
        from modelloop.training.jobs import JobFailed

        executor = executors.canonical(executor)
        _workers(workers)
        spec = {**spec, "workers": workers or os.cpu_count() or 1, "executor": executor,
                "ray_address": ray_address}
        store = self.store
        watcher = _Watcher(store, spec, progress) if progress else None
        started = time.monotonic()
        try:
            job = self.jobs.run(
                "transform",
                spec,
                name=f"transform {spec['model']}",
                params={"model": spec["model"], "output": spec["output"],
                        "output_format": spec["output_format"], "workers": spec["workers"],
                        "executor": executor, **({"resumes": spec["resumes"]}
                                                 if spec.get("resumes") else {})},
                inputs=spec["lineage"],
                on_start=watcher.start if watcher else None,
            )
        except JobFailed as exc:
            exc.hint = (f"finished chunks are kept: resume with 'modelloop transform resume "
                        f"{exc.job['id']}' (log: 'modelloop jobs logs {exc.job['id']}')")
            raise
        finally:
            if watcher:
                watcher.stop()
        out = job["outputs"]
        return TransformResult(
            job_id=job["id"], status=out["status"], output=spec["output"], rows=out["rows"],
            error_rows=out["error_rows"], errors_file=out.get("errors_file"),
            chunks=len(spec["chunks"]), chunks_skipped=out.get("chunks_skipped", 0),
            seconds=time.monotonic() - started, model=spec["model"], job=job,
        )

    # -- planning -----------------------------------------------------------------------------
    def plan(self, model: str, input, output: str, opts: TransformOptions, *,
             errors_file: str | None = None, force: bool = False,
             reason: str | None = None) -> dict:
        """Check everything a user can get wrong, and cut the input into chunks (no scoring)."""
        return make_plan(self.models, self.datasets, self._storage_options(), model, input,
                         output, opts, errors_file=errors_file, force=force, reason=reason)

    def _storage_options(self) -> dict:
        """Options for ``s3://`` inputs and outputs: the artifact store's, when it is on S3 too."""
        if self.artifacts.url.startswith("s3://"):
            return dict(self.artifacts.options)
        return {}


def _exists(location: str, options: dict | None) -> bool:
    """Whether a finished transform's output is still where it wrote it."""
    if is_remote(location):
        try:
            return filesystem(location, options).exists(location.split("://", 1)[1])
        except Exception:  # noqa: BLE001 - unreachable store: resume decides by running it again
            return False
    return os.path.exists(location)


class _Watcher:
    """Reads the transform's chunk records while its job runs and reports progress."""

    def __init__(self, store, spec: dict, callback):
        self.store, self.spec, self.callback = store, spec, callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, _job_id: int) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        total_bytes = sum(int(c.get("input_bytes", 0)) for c in self.spec["chunks"])
        while True:
            stopping = self._stop.wait(0.3)
            try:
                done = self.store.transform_progress(self.spec["key"])
            except Exception:  # noqa: S112 - progress is best effort; the job reports errors
                continue
            self.callback({**done, "total_chunks": len(self.spec["chunks"]),
                           "total_bytes": total_bytes})
            if stopping:
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


# -- the job -------------------------------------------------------------------------------------
@register_job_kind("transform")
def run_transform_job(ctx, spec: dict) -> None:
    """The ``transform`` job kind: score the chunks not yet recorded, then assemble the output."""
    from modelloop.batch import dispatch
    from modelloop.registry.registry import Registry

    store = ctx.store
    rec = ctx.recorder
    registry = Registry(ctx.store, ctx.artifacts, ctx.scratch.parent.parent / "cache" / "models",
                        datasets=ctx.datasets)
    package_dir = str(registry.package_dir(spec["model"]))
    layout = {**spec["layout"], "files": spec["files"], "dataset": spec["dataset"],
              "storage_options": spec["storage_options"], "artifacts_url": ctx.artifacts.url,
              "artifacts_options": ctx.artifacts.options}
    key, chunks = spec["key"], spec["chunks"]
    from modelloop.batch.assemble import remove_stale_temporaries

    for target in (spec["output"], spec["errors_file"]):  # what a killed run left
        remove_stale_temporaries(target)
    if spec["executor"] == "processes" and spec["workers"] > 1 and len(chunks) > 1:
        dispatch.warm_up(package_dir)  # the pool's server loads the model while we go on
    done = store.transform_chunks(key)
    todo = [i for i in range(len(chunks)) if i not in done]
    rec.set_info("transform_key", key)
    rec.set_output("chunks", len(chunks))
    rec.set_output("chunks_skipped", len(chunks) - len(todo))
    rec.log_text(f"transform {key[:12]}: {len(chunks)} chunks, {len(chunks) - len(todo)} already "
                 f"done; scoring {len(todo)} with {spec['workers']} {spec['executor']} worker(s)")
    started = time.monotonic()

    def finished(result) -> None:
        part = ctx.artifacts.put_bytes(result.part)
        errs = ctx.artifacts.put_bytes(result.errors) if result.errors else None
        store.record_transform_chunk(
            transform_key=key, chunk=result.chunk, job_id=ctx.job_id, rows=result.rows,
            error_rows=result.error_rows, input_bytes=result.input_bytes,
            part_digest=part.digest, errors_digest=errs.digest if errs else None)

    dispatch.score_chunks(spec["executor"], package_dir, [(i, chunks[i]) for i in todo], layout,
                          finished, workers=spec["workers"], address=spec.get("ray_address"))
    scored = time.monotonic() - started

    records = store.transform_chunks(key)
    missing = [i for i in range(len(chunks)) if i not in records]
    if missing:  # cannot happen unless an executor lost a chunk: never write a partial output
        raise RuntimeError(f"chunks {missing[:5]} were not scored")
    ordered = [records[i] for i in range(len(chunks))]
    from modelloop.batch.assemble import assemble

    assemble(ctx.artifacts, [r["part_digest"] for r in ordered], spec["output"],
             spec["output_format"], spec["layout"]["output_columns"], spec["storage_options"],
             scratch=ctx.scratch)
    rows = sum(r["rows"] for r in ordered)
    error_rows = sum(r["error_rows"] for r in ordered)
    error_parts = [r["errors_digest"] for r in ordered if r["errors_digest"]]
    if error_parts:
        assemble(ctx.artifacts, error_parts, spec["errors_file"], "jsonl", [],
                 spec["storage_options"], scratch=ctx.scratch)
        rec.set_output("errors_file", spec["errors_file"])
    status = TransformStatus.COMPLETED_WITH_ERRORS if error_rows else TransformStatus.COMPLETED
    rec.set_output("status", status)
    rec.set_output("output", spec["output"])
    rec.set_output("rows", rows)
    rec.set_output("error_rows", error_rows)
    rec.log_metric("rows", rows)
    rec.log_metric("error_rows", error_rows)
    fresh = sum(records[i]["rows"] + records[i]["error_rows"] for i in todo)
    if scored > 0 and fresh:
        rec.log_metric("rows_per_second", fresh / scored)
    rec.log_text(f"transform {status}: {rows} rows written to {spec['output']}"
                 + (f", {error_rows} rows in {spec['errors_file']}" if error_rows else ""))
