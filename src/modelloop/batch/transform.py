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

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from modelloop.batch import sources
from modelloop.common.hashing import sha256_bytes
from modelloop.common.status import ApprovalStatus, TransformStatus
from modelloop.errors import InvalidInput, NotApproved
from modelloop.tabular.chunks import plan_file
from modelloop.tabular.formats import check_format, format_of, is_gzip
from modelloop.tabular.locations import InputFile, filesystem, is_remote
from modelloop.training.job_kinds import register_job_kind

PLAN_VERSION = 1
JOIN_SOURCES = ("none", "input")


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
    """Batch transforms of one workspace (``ws.transforms``)."""

    def __init__(self, ws):
        self.ws = ws

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
        job = self.ws.jobs.get(job_id)
        if job["kind"] != "transform":
            raise InvalidInput(
                f"job {job['id']} is {'an' if job['kind'][:1] in 'aeiou' else 'a'} "
                f"{job['kind']} job, not a transform",
                hint="list transforms with 'modelloop jobs list --kind transform'",
            )
        spec = dict(job["spec"])
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

    def status(self, job_id: int | str) -> dict:
        """A transform job with its chunk progress."""

        job = self.ws.jobs.get(job_id)
        spec = job["spec"]
        done = self.ws.store.transform_progress(spec["key"])
        return {"job": job, "total_chunks": len(spec["chunks"]), **done}

    def _execute(self, spec, workers, executor, ray_address, progress) -> TransformResult:
        from modelloop.common import executors
        from modelloop.training.jobs import JobFailed

        executor = executors.canonical(executor)
        _workers(workers)
        spec = {**spec, "workers": workers or os.cpu_count() or 1, "executor": executor,
                "ray_address": ray_address}
        store = self.ws.store
        watcher = _Watcher(store, spec, progress) if progress else None
        started = time.monotonic()
        try:
            job = self.ws.jobs.run(
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
        from modelloop.registry.package import Manifest

        name_version = "{}@{}".format(*self.ws.models.resolve(model))
        record = self.ws.models.get(name_version)
        override = _check_approved(record, name_version, force=force, reason=reason)
        manifest = Manifest.from_dict(record["manifest"])
        inputs = [input] if isinstance(input, str) else list(input)
        if not inputs:
            raise InvalidInput("no input given", hint="pass --input PATH|DIR|GLOB|s3://…|dataset:NAME@V")
        storage = self._storage_options()
        if opts.join_source not in JOIN_SOURCES:
            raise InvalidInput(f"unknown join source {opts.join_source!r}",
                               hint=f"use {' or '.join(JOIN_SOURCES)}")
        files: list[InputFile] = []
        dataset = None
        if any(i.startswith("dataset:") for i in inputs):
            if len(inputs) > 1:
                raise InvalidInput("a dataset input cannot be mixed with other inputs",
                                   hint="transform one dataset version per job")
            dataset = self.ws.datasets.get(inputs[0].removeprefix("dataset:"))
            columns = list(dataset.schema.names)
            in_format = "parquet"
        else:
            for i in inputs:
                files += sources.find_inputs(i, opts.input_format, storage)
            formats = sorted({f.format for f in files})
            if len(formats) > 1:
                raise InvalidInput(f"the input mixes formats ({', '.join(formats)})",
                                   hint="transform one format per job")
            in_format = formats[0]
            columns = sources.input_columns(files[0], storage)
            for f in files[1:]:
                other = sources.input_columns(f, storage)
                if set(other) != set(columns):
                    raise InvalidInput(
                        f"'{f.path}' has other columns than '{files[0].path}'",
                        hint="all input files of a transform need the same columns",
                    )
        layout = _layout(manifest, columns, opts)
        output, out_format = _output_location(output, opts.output_format, in_format, inputs)
        errors_file = errors_file or _errors_location(output)
        check_writable(output, storage)
        chunks: list[dict] = []
        if dataset is not None:
            parts = self.ws.datasets.parts(dataset.ref)  # a range (NAME@A..B): only its parts
            for n, p in enumerate(parts):
                chunks.append({"digest": p["digest"], "part": n,
                               "input_bytes": int(p.get("size") or 0)})
        else:
            for n, f in enumerate(files):
                chunks += plan_file(
                    f, n, chunk_bytes=max(1, int(opts.chunk_mb * (1 << 20))),
                    chunk_rows=opts.chunk_rows, options=storage)
        file_dicts = [{**f.to_dict(), "columns": columns} for f in files]
        lineage = [{"kind": "model", "ref": name_version, "package_hash": manifest.package_hash}]
        lineage += ([{"kind": "dataset", "ref": dataset.ref}] if dataset is not None else
                    [{"kind": "file", "path": f.path, "size": f.size} for f in files])
        spec = {
            "plan_version": PLAN_VERSION,
            "model": name_version,
            "package_hash": manifest.package_hash,
            "inputs": inputs,
            "dataset": dataset.ref if dataset is not None else None,
            "files": file_dicts,
            "output": output,
            "output_format": out_format,
            "errors_file": errors_file,
            "options": opts.key_fields(),
            "layout": {**layout, "output_format": out_format, "batch_rows": opts.batch_rows,
                       "max_errors_per_chunk": opts.max_errors_per_chunk},
            "chunks": chunks,
            "storage_options": storage,
            "lineage": lineage,
        }
        if override:
            spec["approval_override"] = override
        keyed = {k: spec[k] for k in ("plan_version", "package_hash", "dataset", "files",
                                      "output", "output_format", "options", "chunks")}
        spec["key"] = sha256_bytes(json.dumps(keyed, sort_keys=True, default=str))
        return spec

    def _storage_options(self) -> dict:
        """Options for ``s3://`` inputs and outputs: the artifact store's, when it is on S3 too."""
        if self.ws.config.artifacts_url.startswith("s3://"):
            return dict(self.ws.config.artifacts_options)
        return {}


def _check_approved(record: dict, ref: str, *, force: bool, reason: str | None) -> dict | None:
    """Refuse a version that is not approved unless forced; the override to record, if any."""
    import warnings

    from modelloop.config import current_actor

    status = record["status"]
    if status == ApprovalStatus.APPROVED:
        return None
    if not force:
        raise NotApproved(f"model {ref} is {status}, not approved: transform refuses it",
                          hint=f"approve it ('modelloop models approve {ref}'), or pass --force "
                               "with --reason (force=True, reason=...) to score with it anyway")
    why = reason or "no reason given"
    warnings.warn(f"transform: scoring with {ref}, which is {status} (forced: {why})",
                  stacklevel=4)
    return {"model": ref, "status": status, "reason": why, "by": current_actor(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _layout(manifest, columns: list[str], opts: TransformOptions) -> dict:
    """Which columns are read, fed, passed through and written; checked against the input."""
    import numpy as np

    signature = manifest.input_signature
    present = set(columns)
    if opts.input_filter:
        include = [c for c in opts.input_filter if not c.startswith("-")]
        exclude = {c[1:] for c in opts.input_filter if c.startswith("-")}
        for c in [*include, *exclude]:
            if c not in present:
                raise InvalidInput(f"input filter names column {c!r}, which the input lacks",
                                   hint=f"the input has: {_few(columns)}")
        feed = include or [c for c in columns if c not in exclude]
        extra = [c for c in feed if c not in signature.names]
        if extra:
            raise InvalidInput(
                f"input filter feeds column {extra[0]!r}, which the model does not take",
                hint=f"the model takes: {_few(signature.names)}")
    else:
        feed = [c for c in signature.names if c in present]
    missing = [c.name for c in signature.columns if c.required and c.name not in feed]
    if missing:
        raise InvalidInput(
            f"the input lacks column{'s' if len(missing) > 1 else ''} the model requires: "
            f"{', '.join(missing)}",
            hint=f"the input has: {_few(columns)}")
    if opts.id_column and opts.id_column not in present:
        raise InvalidInput(f"id column {opts.id_column!r} is not in the input",
                           hint=f"the input has: {_few(columns)}")
    classes = manifest.classes
    if opts.proba and not classes:
        raise InvalidInput(f"the model ({manifest.task or 'no task'}) has no class probabilities",
                           hint="drop --proba for a regression model")
    if opts.join_source == "input":
        passed = list(columns)
    else:
        passed = [opts.id_column] if opts.id_column else []
    prediction = "prediction"
    proba_columns = [f"proba_{c}" for c in classes] if opts.proba else []
    for c in (prediction, *proba_columns):
        if c in passed:
            raise InvalidInput(f"the input already has a column named {c!r}",
                               hint="rename it, or don't join the input (--join-source none)")
    written = [*passed, prediction, *proba_columns]
    if opts.output_filter:
        for c in opts.output_filter:
            if c not in written:
                raise InvalidInput(f"output filter names column {c!r}, which is not written",
                                   hint=f"the output has: {_few(written)}")
        written = list(opts.output_filter)
    read = [c for c in columns if c in set(feed) | set(passed)]
    dtype = np.asarray(classes).dtype.str if classes else "<f8"
    return {
        "read_columns": read,
        "feed_columns": feed,
        "pass_columns": passed,
        "prediction_column": prediction,
        "proba_columns": proba_columns,
        "output_columns": written,
        "proba": bool(opts.proba),
        "classes": classes,
        "prediction_dtype": dtype,
    }


def _few(names: list[str], n: int = 20) -> str:
    return ", ".join(names[:n]) + (" …" if len(names) > n else "")


def _output_location(output: str, fmt: str | None, in_format: str, inputs) -> tuple[str, str]:
    """The output file and its format: --output-format, else the output's suffix, else the input's."""
    if not output:
        raise InvalidInput("no output given", hint="pass --output PATH|s3://…")
    is_dir = output.endswith("/") or (not is_remote(output) and os.path.isdir(output))
    suffix_format = None if is_dir or is_gzip(output) else format_of(output, None, sources.FORMATS)
    out_format = check_format(fmt, sources.FORMATS) if fmt else (suffix_format or in_format)
    if is_dir:
        output = output.rstrip("/") + "/predictions" + sources.EXTENSIONS[out_format]
    if not is_remote(output):
        output = str(Path(output.removeprefix("file://")).resolve())
        if output in {str(Path(i).resolve()) for i in inputs if not i.startswith("dataset:")}:
            raise InvalidInput("the output would overwrite the input", hint="write elsewhere")
    return output, out_format


def _errors_location(output: str) -> str:
    stem, _ = os.path.splitext(output)
    return stem + ".errors.jsonl"


def check_writable(location: str, options: dict | None = None) -> None:
    """Fail now, not after an hour of scoring, if the output cannot be written."""
    if is_remote(location):
        fs = filesystem(location, options)
        probe = location.split("://", 1)[1] + f".probe-{uuid.uuid4().hex}"
        try:
            with fs.open(probe, "wb") as fh:
                fh.write(b"")
            fs.rm_file(probe)
        except Exception as exc:  # any error of the object store means: not writable
            raise InvalidInput(f"cannot write the output '{location}': {exc}",
                               hint="check the bucket, the prefix and the credentials") from None
        return
    parent = Path(location).parent
    if not parent.is_dir():
        raise InvalidInput(f"cannot write the output '{location}': folder {parent} does not exist",
                           hint="create the folder first")
    if not os.access(parent, os.W_OK) or (os.path.exists(location)
                                          and not os.access(location, os.W_OK)):
        raise InvalidInput(f"cannot write the output '{location}': permission denied",
                           hint="choose a location you can write to")


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
