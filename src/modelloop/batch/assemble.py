"""Writing a transform's output: its chunk parts, in order, to one file, atomically.

CSV parts carry no header (one is written first), JSON Lines parts are concatenated, and Parquet
parts become the row groups of one file whose schema is the union of the parts' (a chunk whose
column came out as integers joins one where it came out as floats). A local output is written
under a temporary name and renamed; an S3 upload is committed when its multipart upload
completes, so readers never see half an output.
"""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from pathlib import Path

from modelloop._faults import checkpoint
from modelloop.tabular.locations import filesystem, is_remote


def assemble(artifacts, digests: list[str], output: str, fmt: str, columns: list[str],
             storage_options: dict | None, *, scratch: Path) -> None:
    if is_remote(output):
        fs = filesystem(output, storage_options)
        with fs.open(output.split("://", 1)[1], "wb") as fh:
            _write(artifacts, digests, fh, fmt, columns)
        return
    target = Path(output)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            checkpoint("transform.assembling")
            _write(artifacts, digests, fh, fmt, columns)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_stale_temporaries(output: str) -> int:
    """Delete the temporary files a killed assembly of ``output`` left beside it (a SIGKILL skips
    the ``finally`` of :func:`assemble`); a rerun or resume of the transform calls this first."""
    if is_remote(output):
        return 0  # an unfinished multipart upload is never visible as an object
    target = Path(output)
    removed = 0
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def _write(artifacts, digests: list[str], fh, fmt: str, columns: list[str]) -> None:
    if fmt == "parquet":
        _write_parquet(artifacts, digests, fh)
        return
    if fmt in ("csv", "tsv"):
        from modelloop.batch.scoring import csv_header

        fh.write(csv_header(columns, fmt))
    for d in digests:
        fh.write(artifacts.read_bytes(d))


def _write_parquet(artifacts, digests: list[str], fh) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(artifacts.open(d)) for d in digests]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    with pq.ParquetWriter(fh, schema) as writer:
        for d in digests:
            table = pq.read_table(artifacts.open(d))
            if table.num_rows:
                writer.write_table(table.cast(schema))
