"""Where a transform reads from and writes to, and how its input is cut into chunks.

A transform's input is a list of files (local paths, folders, globs or ``s3://`` URLs) in CSV,
Parquet or JSON Lines, or the parts of a dataset version. The *chunk plan* cuts it into pieces
that are scored independently: text files into byte ranges that end at a line end (found by
seeking, without reading the file), Parquet files into runs of row groups, a dataset version into
its Parquet parts. The plan is a pure function of the files, so a resumed transform finds the
same chunks, and a chunk reads the same rows on any machine.

Like pyarrow's own CSV defaults (and the ingest engine), quoted values may not hold line breaks.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from modelloop.errors import InvalidInput, NotFound

SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
EXTENSIONS = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl"}
FORMATS = tuple(EXTENSIONS)


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def filesystem(location: str, options: dict | None = None):
    """The fsspec filesystem of a remote location (endpoint from the options or environment)."""
    from modelloop.artifacts import _remote_fs

    return _remote_fs(location, dict(options or {}))


def format_of(path: str, override: str | None = None) -> str | None:
    if override:
        if override not in FORMATS:
            raise InvalidInput(
                f"unknown format {override!r}", hint=f"use one of {', '.join(FORMATS)}"
            )
        return override
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".gz"):
        raise InvalidInput(
            f"'{path}' is compressed; batch transform reads uncompressed files",
            hint="decompress it first, or ingest it as a dataset and transform 'dataset:NAME@V'",
        )
    return SUFFIXES.get(os.path.splitext(name)[1])


@dataclass(frozen=True)
class InputFile:
    """One input file as found when the transform was planned (size and version pin it)."""

    path: str
    format: str
    size: int
    version: str  # mtime in ns for a local file, ETag for an object: a changed file is noticed

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "size": self.size, "version": self.version}


def find_files(location: str, fmt: str | None = None, options: dict | None = None) -> list[InputFile]:
    """Expand a file, folder, glob or ``s3://`` prefix to its input files, in name order."""
    if is_remote(location):
        return _find_remote(location, fmt, options)
    given = location.removeprefix("file://")
    if glob.has_magic(given):
        found = sorted(p for p in glob.glob(given, recursive=True) if os.path.isfile(p))
        if not found:
            raise NotFound(f"no files match '{given}'", hint="check the pattern")
    elif os.path.isdir(given):
        found = sorted(
            str(p)
            for p in Path(given).rglob("*")
            if p.is_file() and not p.name.startswith((".", "_")) and format_of(str(p), fmt)
        )
        if not found:
            raise NotFound(
                f"no CSV, Parquet or JSON Lines files in folder '{given}'",
                hint="give files ending in " + ", ".join(SUFFIXES),
            )
    elif os.path.isfile(given):
        found = [given]
    else:
        raise NotFound(f"no such input file: '{given}'", hint="check the path")
    out = []
    for p in found:
        kind = _known_format(p, fmt)
        st = os.stat(p)
        out.append(InputFile(str(Path(p).resolve()), kind, st.st_size, str(st.st_mtime_ns)))
    return out


def _known_format(path: str, fmt: str | None) -> str:
    kind = format_of(path, fmt)
    if kind is None:
        raise InvalidInput(
            f"unknown format of '{path}'",
            hint=f"name files {', '.join(SUFFIXES)}, or pass --input-format",
        )
    return kind


def _find_remote(location: str, fmt: str | None, options: dict | None) -> list[InputFile]:
    fs = filesystem(location, options)
    protocol = location.split("://", 1)[0]
    bare = location.split("://", 1)[1]
    try:
        if glob.has_magic(bare):
            paths = sorted(fs.glob(bare))
        elif fs.isdir(bare):
            paths = sorted(
                p for p in fs.find(bare) if not p.rsplit("/", 1)[-1].startswith((".", "_"))
            )
            paths = [p for p in paths if format_of(p, fmt)]
        else:
            paths = [bare] if fs.exists(bare) else []
    except (OSError, PermissionError) as exc:
        raise NotFound(f"cannot read '{location}': {exc}", hint="check the URL and credentials") from None
    if not paths:
        raise NotFound(f"no input files at '{location}'", hint="check the URL")
    out = []
    for p in paths:
        info = fs.info(p)
        version = str(info.get("ETag") or info.get("etag") or info.get("LastModified") or "")
        url = f"{protocol}://{p}"
        out.append(InputFile(url, _known_format(url, fmt), int(info["size"]), version))
    return out


def open_input(path: str, options: dict | None = None):
    """A binary file object for a local path or a remote URL."""
    if is_remote(path):
        return filesystem(path, options).open(path.split("://", 1)[1], "rb")
    return open(path.removeprefix("file://"), "rb")


# -- reading the head of a file (columns) ----------------------------------------------------------
def first_line(fh, limit: int = 1 << 24) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < limit:
        more = fh.read(1 << 16)
        if not more:
            break
        data += more
    cut = data.find(b"\n")
    return data if cut < 0 else data[: cut + 1]


def input_columns(f: InputFile, options: dict | None = None) -> list[str]:
    """The column names of an input file (CSV header, Parquet schema, first JSON object's keys)."""
    import json

    import pyarrow as pa
    import pyarrow.csv as csv
    import pyarrow.parquet as pq

    try:
        with open_input(f.path, options) as fh:
            if f.format == "parquet":
                return list(pq.ParquetFile(fh).schema_arrow.names)
            line = first_line(fh)
            if not line.strip():
                raise InvalidInput(f"'{f.path}' is empty", hint="give a file with a header and rows")
            if f.format == "csv":
                if b"\x00" in line:
                    raise InvalidInput(f"'{f.path}' is not a text file", hint="is it a CSV?")
                line = line.removeprefix(b"\xef\xbb\xbf")
                names = csv.read_csv(pa.py_buffer(line.rstrip(b"\r\n") + b"\n")).column_names
            else:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise InvalidInput(
                        f"'{f.path}' does not hold one JSON object per line",
                        hint="write JSON Lines: {\"col\": value, …} on each line",
                    )
                names = list(record)
    except (OSError, ValueError, pa.ArrowException) as exc:
        text = str(exc).strip().splitlines()
        raise InvalidInput(
            f"cannot read input '{f.path}' as {f.format}: {text[0] if text else type(exc).__name__}",
            hint="check the file and its format",
        ) from None
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(
            f"'{f.path}' has duplicate column names: {', '.join(dupes)}",
            hint="give every column a distinct name",
        )
    return names


# -- the chunk plan ------------------------------------------------------------------------------
def plan_file(
    f: InputFile, index: int, *, chunk_bytes: int, chunk_rows: int, options: dict | None = None
) -> list[dict]:
    """The chunks of one file: byte ranges at line ends (text) or runs of row groups (Parquet)."""
    if f.format == "parquet":
        return _plan_parquet(f, index, chunk_rows, options)
    chunks = []
    with open_input(f.path, options) as fh:
        header = first_line(fh) if f.format == "csv" else b""
        start = len(header)
        while start < f.size:
            end = min(start + chunk_bytes, f.size)
            if end < f.size:
                fh.seek(end)
                tail = first_line(fh)  # the rest of the line the cut fell in
                end = min(end + len(tail), f.size)
            chunks.append(
                {"file": index, "start": start, "end": end, "input_bytes": end - start}
            )
            start = end
    return chunks


def _plan_parquet(f: InputFile, index: int, chunk_rows: int, options) -> list[dict]:
    import pyarrow.parquet as pq

    with open_input(f.path, options) as fh:
        meta = pq.ParquetFile(fh).metadata
    chunks, groups, rows, size = [], [], 0, 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        groups.append(g)
        rows += rg.num_rows
        size += rg.total_byte_size
        if rows >= chunk_rows:
            chunks.append({"file": index, "row_groups": groups, "input_bytes": size})
            groups, rows, size = [], 0, 0
    if groups:
        chunks.append({"file": index, "row_groups": groups, "input_bytes": size})
    return chunks


# -- reading one chunk ---------------------------------------------------------------------------
def read_chunk(chunk: dict, layout: dict, artifacts=None):
    """The chunk's rows as Arrow record batches of at most ``layout['batch_rows']`` rows.

    Only the columns the transform uses are read. Text is parsed with each column's type
    inferred from the chunk; the model's signature casts the features afterwards.
    """
    import pyarrow as pa

    columns = layout["read_columns"]
    if "digest" in chunk:  # a part of a dataset version
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(artifacts.open(chunk["digest"]))
        present = [c for c in columns if c in pf.schema_arrow.names]
        yield from pf.iter_batches(batch_size=layout["batch_rows"], columns=present)
        return
    f = layout["files"][chunk["file"]]
    options = layout.get("storage_options")
    if f["format"] == "parquet":
        import pyarrow.parquet as pq

        with open_input(f["path"], options) as fh:
            pf = pq.ParquetFile(fh)
            present = [c for c in columns if c in pf.schema_arrow.names]
            yield from pf.iter_batches(
                batch_size=layout["batch_rows"], row_groups=chunk["row_groups"], columns=present
            )
        return
    with open_input(f["path"], options) as fh:
        fh.seek(chunk["start"])
        data = fh.read(chunk["end"] - chunk["start"])
    if f["format"] == "csv":
        import pyarrow.csv as csv

        table = csv.read_csv(
            pa.py_buffer(data),
            read_options=csv.ReadOptions(column_names=f["columns"], block_size=1 << 22,
                                         use_threads=layout.get("reader_threads", True)),
            convert_options=csv.ConvertOptions(include_columns=columns),
        )
    else:
        import pyarrow.json as pj

        table = pj.read_json(pa.py_buffer(data), read_options=pj.ReadOptions(block_size=1 << 22))
        table = table.select([c for c in columns if c in table.column_names])
    yield from table.to_batches(max_chunksize=layout["batch_rows"])
