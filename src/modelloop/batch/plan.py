"""Planning a transform: everything a user can get wrong is checked here, before any scoring, and
the input is cut into chunks (:func:`modelloop.tabular.chunks.plan_file`). The plan is a pure
function of the model, the files and the options: its key names the transform, so a rerun finds
the chunks already scored."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop.batch import sources
from modelloop.common.hashing import sha256_bytes
from modelloop.common.status import ApprovalStatus
from modelloop.errors import InvalidInput, NotApproved
from modelloop.tabular.chunks import plan_file
from modelloop.tabular.formats import check_format, format_of, is_gzip
from modelloop.tabular.locations import InputFile, filesystem, is_remote

if TYPE_CHECKING:
    from modelloop.batch.transform import TransformOptions
    from modelloop.data.datasets import Datasets
    from modelloop.registry.registry import Registry

PLAN_VERSION = 1
JOIN_SOURCES = ("none", "input")


def make_plan(models: Registry, datasets: Datasets, storage: dict, model: str, input,
          output: str, opts: TransformOptions, *, errors_file: str | None = None,
          force: bool = False, reason: str | None = None) -> dict:
    """The transform's spec: model, input files and their chunks, output, layout, and the key
    that names it (a rerun with the same key resumes)."""
    from modelloop.registry.package import Manifest

    name_version = "{}@{}".format(*models.resolve(model))
    record = models.get(name_version)
    override = _check_approved(record, name_version, force=force, reason=reason)
    manifest = Manifest.from_dict(record["manifest"])
    inputs = [input] if isinstance(input, str) else list(input)
    if not inputs:
        raise InvalidInput("no input given", hint="pass --input PATH|DIR|GLOB|s3://…|dataset:NAME@V")
    if opts.join_source not in JOIN_SOURCES:
        raise InvalidInput(f"unknown join source {opts.join_source!r}",
                           hint=f"use {' or '.join(JOIN_SOURCES)}")
    files: list[InputFile] = []
    dataset = None
    if any(i.startswith("dataset:") for i in inputs):
        if len(inputs) > 1:
            raise InvalidInput("a dataset input cannot be mixed with other inputs",
                               hint="transform one dataset version per job")
        dataset = datasets.get(inputs[0].removeprefix("dataset:"))
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
        parts = datasets.parts(dataset.ref)  # a range (NAME@A..B): only its parts
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
                  stacklevel=5)  # the caller of Transforms.run
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
    # fed only (a passed column is written as the input had it): parsed as float64 up front
    doubles = [c.name for c in signature.columns
               if c.type == "double" and c.name in feed and c.name not in passed]
    return {
        "read_columns": read,
        "double_columns": doubles,
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
