"""The ingest engine: input files (CSV, Parquet, JSON Lines) -> validated Parquet parts in a folder.

This module is pure: it reads files and writes into a staging folder; recording a dataset version
(metadata, artifacts, crash safety) is :mod:`modelloop.data.datasets`' job.

How a file flows:

1. Paths are expanded (files, folders, globs), each file is hashed (sha256); files whose hash is in
   ``skip_hashes``, or seen earlier in the same call, are skipped and reported.
2. The file is cut into blocks of ``block_size`` bytes at line ends, and each block is parsed with
   pyarrow's multithreaded reader (``pyarrow.csv.read_csv`` / ``pyarrow.json.read_json``) with the
   column types fixed from the dataset's schema. Blocks keep memory bounded whatever the file's
   size, and give the speed of pyarrow's whole-file reader (its streaming reader converts on one
   thread and is about half as fast). Like pyarrow's own defaults, quoted values may not contain
   line breaks.
3. A block that does not convert (a value that is not a number, say) is parsed again as text and
   conformed column by column (:mod:`modelloop.data.schema`): failing values put their row in
   quarantine with a reason naming the column and the value; only that block pays. For a new
   dataset, types are instead widened over the whole file (int -> float -> string), so a first
   version never quarantines values because of block-wise type inference.
4. Conformed blocks are appended to Parquet parts (``part_rows`` rows each, written on a second
   thread while the next block is parsed); parts written before the schema widened are rewritten
   at the end so that all parts share exactly the resulting schema, in the dataset's column order.

5. Before anything is recorded, every part (and the quarantine) is read back as readers will read
   it, and the schema is serialized and parsed again: what cannot be read back is refused here,
   never committed.

Files without rows: an empty or blank file is an error; a file with columns but no rows (a CSV
header, a Parquet file of zero rows) is checked against the dataset and recorded with 0 rows, but
an ingest that would add no rows at all is refused ("nothing to ingest"). Column names must be
distinct and not empty, in every format. JSON values nested deeper than
:data:`~modelloop.data.schema.MAX_NESTING` levels put their row in quarantine.

Schema rules (see :mod:`modelloop.data.schema` for types): a missing or extra column, a typed
column that does not fit, or a text column where more than ``max_bad_fraction`` of the values fail
to convert is a :class:`~modelloop.errors.SchemaMismatch` naming the column, unless schema
evolution is allowed: then extra columns are added, missing ones filled with nulls, and clashing
columns widened, each change listed in ``schema_changes``.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop.common.hashing import sha256_file
from modelloop.data.schema import (
    MAX_NESTING,
    align_table,
    cast_typed,
    castable,
    conform_text,
    fits,
    infer_text,
    is_text,
    is_time,
    nesting,
    normalize_type,
    unify,
    value_nesting,
)
from modelloop.errors import InvalidInput, ModelloopError, NotFound, SchemaMismatch

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: File suffix -> format. ``.gz`` may follow the text formats.
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
FORMATS = ("csv", "tsv", "parquet", "jsonl", "json")

QUARANTINE_COLUMNS = ("source", "row", "record", "reason")


@dataclass
class IngestOptions:
    """How to ingest.

    ``max_bad_fraction``: in one file, if more than this share of a column's non-null values fail
    to convert to the dataset's type, the column is a type clash (an error), not a few bad rows
    (quarantined). 0.5: when most of a column fails, the file means something else by it.
    The same share of rows with the wrong number of fields makes the file unreadable.

    ``block_size``: bytes of the file parsed at once (memory is a few blocks, whatever the file's
    size; 16 MiB measured as fast as 64 MiB on 2 cores at less than half the peak memory);
    ``parse_block``: pyarrow's own block within it (its unit of parallelism). ``compression``
    of the parts: zstd measured as fast as snappy and lz4 here, with smaller parts.
    """

    allow_schema_evolution: bool = False
    event_time_column: str | None = None
    format: str | None = None
    max_bad_fraction: float = 0.5
    part_rows: int = 1_000_000
    skip_hashes: Collection[str] = frozenset()
    block_size: int = 16 << 20
    parse_block: int = 1 << 20
    compression: str = "zstd"


@dataclass
class Part:
    """One Parquet file written into the staging folder."""

    path: str
    rows: int


@dataclass
class SourceFile:
    """One input file: where it came from, its content hash and what became of its rows."""

    path: str
    resolved: str
    size: int
    sha256: str
    format: str
    rows: int = 0
    quarantined_rows: int = 0


@dataclass
class IngestResult:
    schema: pa.Schema | None
    parts: list[Part]
    quarantine: str | None
    rows: int
    quarantined_rows: int
    sources: list[SourceFile]
    skipped: list[str]
    event_time_min: datetime | None = None
    event_time_max: datetime | None = None
    schema_changes: list[str] = field(default_factory=list)


def ingest_files(
    paths: list[str],
    staging_dir: Path,
    schema: pa.Schema | None,
    options: IngestOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Turn input files into Parquet parts conforming to ``schema`` (None: a new dataset)."""
    options = options or IngestOptions()
    if options.format is not None and options.format not in FORMATS:
        raise InvalidInput(
            f"unknown format '{options.format}'", hint=f"use one of: {', '.join(FORMATS)}"
        )
    files = resolve_paths(paths, options.format)
    run = _Run(
        Path(staging_dir), schema, options, progress, sum(f[1].stat().st_size for f in files)
    )
    for shown, path, fmt in files:
        run.ingest(shown, path, fmt)
    return run.finish()


# -- paths --------------------------------------------------------------------------------------


def format_of(path: Path, override: str | None = None) -> str | None:
    if override:
        return override
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
        fmt = SUFFIXES.get(suffixes[-1]) if suffixes else None
        return fmt if fmt != "parquet" else None
    return SUFFIXES.get(suffixes[-1]) if suffixes else None


def resolve_paths(paths: list[str], override: str | None = None) -> list[tuple[str, Path, str]]:
    """Expand files, folders and globs to ``(path as shown, absolute path, format)``, in order."""
    out = []
    for given in paths:
        given = str(given)
        if glob.has_magic(given):
            found = [Path(p) for p in sorted(glob.glob(given, recursive=True))]
            found = [p for p in found if p.is_file()]
            if not found:
                raise NotFound(f"no files match '{given}'", hint="check the pattern")
        elif os.path.isdir(given):
            found = sorted(
                p
                for p in Path(given).rglob("*")
                if p.is_file() and not p.name.startswith((".", "_")) and format_of(p, override)
            )
            if not found:
                raise NotFound(
                    f"no CSV, Parquet or JSON Lines files in folder '{given}'",
                    hint="ingest files ending in " + ", ".join(SUFFIXES),
                )
        elif os.path.exists(given):
            found = [Path(given)]
        else:
            raise NotFound(f"no such file: '{given}'", hint="check the path")
        for p in found:
            fmt = format_of(p, override)
            if fmt is None:
                raise InvalidInput(
                    f"unknown format of '{p}'",
                    hint=f"supported: {', '.join(SUFFIXES)} (and .gz of the text ones), "
                    "or name the format",
                )
            out.append((str(p), p.resolve(), fmt))
    return out


def _first_line(path: Path) -> bytes:
    """The first line of a (possibly gzipped) text file, with its line end."""
    import pyarrow as pa

    with pa.input_stream(str(path), compression="detect") as stream:
        data = b""
        while b"\n" not in data and (more := stream.read(1 << 16)):
            data += more
    cut = data.find(b"\n") + 1
    return data[:cut] if cut else data


def _last_newline(buf) -> int:
    """Index of the last newline in a buffer, or -1; looks at the tail first (lines are short)."""
    import numpy as np

    arr = np.frombuffer(buf, dtype=np.uint8)
    window = 1 << 16
    while True:
        tail = arr[-window:]
        hits = np.flatnonzero(tail == 10)
        if len(hits):
            return len(arr) - len(tail) + int(hits[-1])
        if window >= len(arr):
            return -1
        window *= 16


def _blocks(path: Path, size: int, start: int = 0) -> Iterator[tuple[object, int]]:
    """A text file from byte ``start`` in blocks of about ``size`` bytes cut at line ends.

    Yields ``(block, bytes of the file read so far)``. Plain files are read at offsets into
    pyarrow buffers, so no block is copied in Python and memory stays one block; gzip streams
    are read in order, carrying a partial line over to the next block.
    """
    import pyarrow as pa

    if path.suffix.lower() == ".gz":
        raw = pa.OSFile(str(path))
        stream = pa.CompressedInputStream(raw, "gzip")
        try:
            skip, rest = start, b""
            while data := stream.read(size):
                if skip:
                    data, skip = data[skip:], max(0, skip - len(data))
                data = rest + data if rest else data
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut], raw.tell()
            if rest:
                yield rest, raw.tell()
        finally:
            stream.close()
        return
    with pa.OSFile(str(path)) as fh:
        end, offset = fh.size(), start
        while offset < end:
            fh.seek(offset)
            buf = fh.read_buffer(min(size, end - offset))
            if offset + len(buf) < end:
                cut = _last_newline(buf) + 1
                if cut == 0:  # one line longer than a block: read a bigger block
                    size *= 2
                    continue
                buf = buf.slice(0, cut)
            offset += len(buf)
            yield buf, offset


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# -- writers ------------------------------------------------------------------------------------


class _Parts:
    """Parquet parts of at most ``part_rows`` rows; writes run on a second thread."""

    def __init__(self, folder: Path, part_rows: int, compression: str):
        self.folder, self.part_rows, self.compression = folder, part_rows, compression
        self.parts: list[Part] = []
        self.schemas: list[pa.Schema] = []
        self._writer = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self._pending: Future | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._wait()
        if (
            self._writer is None
            or table.schema != self.schemas[-1]
            or self.parts[-1].rows >= self.part_rows
        ):
            self._open(table.schema)
        room = self.part_rows - self.parts[-1].rows
        if table.num_rows > room:
            head, table = table.slice(0, room), table.slice(room)
            self._writer.write_table(head)
            self.parts[-1].rows += head.num_rows
            return self.write(table)
        self.parts[-1].rows += table.num_rows
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _open(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self._close_writer()
        path = self.folder / f"part-{len(self.parts):05d}.parquet"
        self._writer = pq.ParquetWriter(path, schema, compression=self.compression)
        self.parts.append(Part(str(path), 0))
        self.schemas.append(schema)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _close_writer(self) -> None:
        self._wait()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        try:
            self._close_writer()
        finally:
            self._pool.shutdown()

    def conform_to(self, schema: pa.Schema) -> None:
        """Rewrite the parts written before the schema widened (cast, missing columns null)."""
        import pyarrow.parquet as pq

        for part, had in zip(self.parts, self.schemas, strict=True):
            if had == schema:
                continue
            table = align_table(pq.read_table(part.path), schema)
            tmp = part.path + ".tmp"
            pq.write_table(table, tmp, compression=self.compression)
            os.replace(tmp, part.path)
        self.schemas = [schema] * len(self.parts)


class _Quarantine:
    """Rejected rows with their source, row (line) number, raw record and reason."""

    def __init__(self, path: Path, compression: str):
        self.path, self.compression = path, compression
        self.rows = 0
        self._buf: dict[str, list] = {c: [] for c in QUARANTINE_COLUMNS}
        self._writer = None

    def add(self, source: str, row: int | None, record: str, reason: str) -> None:
        for c, v in zip(QUARANTINE_COLUMNS, (source, row, record, reason), strict=True):
            self._buf[c].append(v)
        self.rows += 1
        if len(self._buf["source"]) >= 100_000:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buf["source"]:
            return
        schema = pa.schema(
            [("source", pa.string()), ("row", pa.int64()), ("record", pa.string())]
            + [("reason", pa.string())]
        )
        table = pa.table(self._buf, schema=schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, schema, compression=self.compression)
        self._writer.write_table(table)
        self._buf = {c: [] for c in QUARANTINE_COLUMNS}

    def close(self) -> str | None:
        self._flush()
        if self._writer is None:
            return None
        self._writer.close()
        return str(self.path)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class _ColumnStats:
    """Per file and column: how many values were given and how many failed to convert."""

    given: int = 0
    bad: int = 0
    examples: list[str] = field(default_factory=list)


class _Run:
    def __init__(self, staging, schema, options: IngestOptions, progress, total_bytes: int):
        self.options = options
        self.new = schema is None
        self.target: pa.Schema | None = schema
        self.original = schema  # what the dataset's earlier versions are read as
        self.changes: list[str] = []
        self.parts = _Parts(staging, options.part_rows, options.compression)
        self.quarantine = _Quarantine(staging / "quarantine.parquet", options.compression)
        self.sources: list[SourceFile] = []
        self.skipped: list[str] = []
        self.seen: set[str] = set(options.skip_hashes)
        self.time_min = self.time_max = None
        self.progress, self.total, self.done = progress, total_bytes, 0
        self.evolve = options.allow_schema_evolution
        self.event = options.event_time_column
        if self.target is not None and self.event is not None:
            if self.event not in self.target.names:
                raise InvalidInput(
                    f"event-time column '{self.event}' is not in the dataset",
                    hint=f"columns: {', '.join(self.target.names)}",
                )
            self._check_event_type(self.target.field(self.event).type)

    # one file -----------------------------------------------------------------------------------
    def ingest(self, shown: str, path: Path, fmt: str) -> None:
        try:
            size = path.stat().st_size
            digest = sha256_file(path)
        except OSError as e:
            raise InvalidInput(
                f"cannot read '{shown}': {e.strerror or _one_line(e)}", hint="check the file"
            ) from e
        if digest in self.seen:
            self.skipped.append(shown)
            self._tick(size)
            return
        self.seen.add(digest)
        src = SourceFile(shown, str(path), size, digest, fmt)
        self.stats: dict[str, _ColumnStats] = {}
        self.src = src
        import pyarrow as pa

        try:
            if size == 0 or (fmt != "parquet" and _blank(path)):
                raise InvalidInput(
                    f"'{shown}' is empty: nothing to ingest", hint="ingest a file with rows"
                )
            if fmt == "parquet":
                self._read_parquet(path)
            elif fmt == "json" and _starts_with_bracket(path):
                self._read_json_array(path)
            elif fmt in ("jsonl", "json"):
                self._read_jsonl(path)
            else:
                self._read_csv(path, "\t" if fmt == "tsv" else ",")
        except ModelloopError:
            raise
        except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as e:
            raise InvalidInput(
                f"cannot read '{shown}' as {fmt}: {_one_line(e)}",
                hint="check the file's format and content",
            ) from e
        self._check_clashes()
        self.sources.append(src)
        self.done += size
        self._tick(0)

    def _tick(self, extra: int) -> None:
        self.done += extra
        if self.progress:
            self.progress(min(self.done, self.total), self.total)

    # readers -----------------------------------------------------------------------------------
    def _read_csv(self, path: Path, delimiter: str) -> None:
        import pyarrow as pa
        import pyarrow.csv as csv

        parse = csv.ParseOptions(delimiter=delimiter)
        header = _first_line(path)
        if not header.strip():
            raise InvalidInput(f"'{self.src.path}' has no header line", hint="ingest a CSV file")
        names = self._csv_names(header.removeprefix(b"\xef\xbb\xbf"), parse)
        line, blocks = 2, 0
        for body, position in _blocks(path, self.options.block_size, start=len(header)):
            line += self._csv_block(body, names, parse, line)
            blocks += 1
            self._report(position)
        if not blocks:
            # a header without rows still declares the columns
            empty = pa.table({n: pa.nulls(0, pa.string()) for n in names})
            self._write(self._conform(empty, lambda i: 0))

    def _csv_names(self, header: bytes, parse) -> list[str]:
        import pyarrow as pa
        import pyarrow.csv as csv

        if b"\x00" in header:
            raise InvalidInput(f"'{self.src.path}' is not a text file", hint="is it a CSV?")
        header.decode("utf-8")  # a UnicodeDecodeError is reported as unreadable
        names = csv.read_csv(pa.py_buffer(header + b"\n"), parse_options=parse).column_names
        self._check_names(names)
        return names

    def _csv_block(self, data, names: list[str], parse, first_line: int) -> int:
        """Parse one block fast with the target's types (on a conversion error, as text).

        Returns the number of lines the block held (a blank line is not counted: line numbers
        in the quarantine assume none, and no line breaks inside quoted values).
        """
        import pyarrow as pa
        import pyarrow.csv as csv

        invalid: list = []

        def keep(row) -> str:
            invalid.append(row)
            return "skip"

        def read(types, threads=True):
            invalid.clear()
            return csv.read_csv(
                pa.BufferReader(data),
                read_options=csv.ReadOptions(
                    use_threads=threads, block_size=self.options.parse_block, column_names=names
                ),
                parse_options=csv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=keep),
                convert_options=csv.ConvertOptions(column_types=types),
            )

        types = {}
        if self.target is not None:
            given = set(names)
            types = {
                f.name: f.type
                for f in self.target
                if f.name in given and not pa.types.is_null(f.type)
            }
        try:
            table = read(types)
        except pa.ArrowInvalid as e:
            if "conversion error" not in str(e):
                raise
            table = read(dict.fromkeys(names, pa.string()))
        if invalid and any(r.number is None for r in invalid):
            # the multithreaded parser does not number rows: parse again on one thread
            table = read({f.name: f.type for f in table.schema}, threads=False)
        bad_lines = sorted(first_line - 1 + r.number for r in invalid)
        for r in invalid:
            self._reject(
                first_line - 1 + r.number,
                r.text,
                f"expected {r.expected_columns} fields, got {r.actual_columns}",
            )
        self.src.quarantined_rows += len(invalid)
        total = table.num_rows + len(invalid)

        def line_of(i: int) -> int:
            line = first_line + i
            for b in bad_lines:
                if b <= line:
                    line += 1
            return line

        if len(invalid) > self.options.max_bad_fraction * total and total >= 2:
            example = invalid[0]
            raise InvalidInput(
                f"'{self.src.path}': {len(invalid)} of {total} rows have the wrong number of "
                f"fields (expected {example.expected_columns}; line "
                f"{first_line - 1 + example.number}: {example.text[:60]!r})",
                hint="check the delimiter and format of the file",
            )
        self._write(self._conform(table, line_of))
        return total

    def _read_parquet(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(str(path))
        total, seen = max(pf.metadata.num_rows, 1), 0
        for batch in pf.iter_batches(batch_size=262_144):
            table = pa.Table.from_batches([batch])
            start = seen + 1
            self._write(self._conform(table, lambda i, s=start: s + i))
            seen += batch.num_rows
            self._report(self.src.size * seen // total)
        if pf.metadata.num_rows == 0:
            self._write(self._conform(pf.schema_arrow.empty_table(), lambda i: 0))

    def _read_jsonl(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.json as pj

        line = 1
        for block, position in _blocks(path, self.options.block_size):
            body = block if isinstance(block, bytes) else block.to_pybytes()
            if line == 1:
                body = body.removeprefix(b"\xef\xbb\xbf")
            try:
                if not body.strip() or b"\n\n" in body or b"\n\r\n" in body:
                    raise pa.ArrowInvalid("blank lines")  # numbering needs the slow path
                table = pj.read_json(pa.BufferReader(body))
                if any(nesting(t) > MAX_NESTING for t in table.schema.types):
                    raise pa.ArrowInvalid("too deep")  # the slow path quarantines those rows
                self._write(self._conform(table, lambda i, s=line: s + i))
            except pa.ArrowInvalid:
                # a line that is not JSON, or a field whose type changes between lines
                self._json_lines_slowly(body, line)
            line += body.count(b"\n") + (not body.endswith(b"\n"))
            self._report(position)

    def _json_lines_slowly(self, body: bytes, first_line: int) -> None:
        records, numbers = [], []
        for k, text in enumerate(body.split(b"\n")):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except RecursionError:
                value, reason = None, f"not readable: nested more than {MAX_NESTING} levels"
            except ValueError as e:
                value, reason = None, f"not JSON: {e}"
            else:
                reason = "not a JSON object" if not isinstance(value, dict) else _too_deep(value)
            if reason:
                self._reject(first_line + k, text.decode("utf-8", "replace"), reason)
                self.src.quarantined_rows += 1
                continue
            records.append(value)
            numbers.append(first_line + k)
        if records:
            self._write(self._conform(_records_table(records), lambda i: numbers[i]))

    def _read_json_array(self, path: Path) -> None:
        with open(path, "rb") as fh:
            try:
                records = json.load(fh)
            except RecursionError:
                raise InvalidInput(
                    f"'{self.src.path}' is nested too deeply to read",
                    hint=f"values may nest at most {MAX_NESTING} levels; "
                    "JSON Lines would quarantine only the rows that nest deeper",
                ) from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput(
                f"'{self.src.path}' is not a list of JSON objects",
                hint="use JSON Lines (one object per line) or a list of objects",
            )
        kept, numbers = [], []
        for i, r in enumerate(records):
            if reason := _too_deep(r):
                self._reject(i + 1, _json_text(r), reason)
                self.src.quarantined_rows += 1
            else:
                kept.append(r)
                numbers.append(i + 1)
        if kept:
            self._write(self._conform(_records_table(kept), lambda i: numbers[i]))

    def _report(self, position: int) -> None:
        if self.progress:
            self.progress(min(self.done + position, self.total), self.total)

    # schema ------------------------------------------------------------------------------------
    def _conform(self, table: pa.Table, row_of: Callable[[int], int]) -> pa.Table:
        """``table`` with the target's columns and types; rows whose values fail go to quarantine."""
        import numpy as np
        import pyarrow as pa

        names = set(table.column_names)
        if len(names) != table.num_columns or "" in names:
            self._check_names(table.column_names)
        for name, t in zip(table.column_names, table.schema.types, strict=True):
            if nesting(t) > MAX_NESTING:
                raise InvalidInput(
                    f"column '{name}' of '{self.src.path}' nests {nesting(t)} levels of lists "
                    f"or structs: data nested more than {MAX_NESTING} levels cannot be read back",
                    hint="flatten the column, or store it as JSON text",
                )
        if self.target is None:
            self.target = self._first_schema(table)
        self._check_columns(table)
        if table.num_rows == 0:  # columns checked; no values to conform
            return self.target.empty_table()
        cols, failures = [], []
        for f in self.target:
            if f.name not in names:
                cols.append(pa.nulls(table.num_rows, f.type))
                continue
            col = table[f.name]
            if col.type == f.type:
                pass
            elif is_text(col.type) and not is_text(f.type):
                if self.new and f.name != self.event:
                    self._widen(f, infer_text(col), quiet=True)
                    f = self.target.field(f.name)
                col, bad = self._text(f, col)
                if bad is not None:
                    failures.append((f.name, bad))
            elif fits(col.type, f.type):
                col = cast_typed(col, f.type)
            elif self.new or self.evolve:
                self._widen(f, col.type)
                col = cast_typed(col, self.target.field(f.name).type)
            else:
                raise SchemaMismatch(
                    f"column '{f.name}' of '{self.src.path}' is {col.type}, but the dataset's is "
                    f"{f.type}",
                    hint="convert the column, or allow schema evolution to widen the dataset's type",
                )
            cols.append(col)
        out = pa.Table.from_arrays(cols, schema=self.target)
        if failures:
            bad_any = np.zeros(table.num_rows, dtype=bool)
            for _, bad in failures:
                bad_any |= bad
            for i in np.flatnonzero(bad_any):
                reason = "; ".join(
                    f"column '{name}': {table[name][int(i)].as_py()!r} is not a valid "
                    f"{self.target.field(name).type}"
                    for name, bad in failures
                    if bad[i]
                )
                record = json.dumps(table.slice(int(i), 1).to_pylist()[0], default=str)
                self._reject(row_of(int(i)), record, reason)
            self.src.quarantined_rows += int(bad_any.sum())
            out = out.filter(pa.array(~bad_any))
        return out

    def _text(self, f: pa.Field, col) -> tuple[pa.Array, np.ndarray | None]:
        """Conform a text column; under evolution, a column that mostly fails is widened instead."""
        values, bad = conform_text(col, f.type)
        given = len(col) - col.null_count
        if bad is not None and self.evolve and bad.sum() > self.options.max_bad_fraction * given:
            self._widen(f, infer_text(col))
            values, bad = conform_text(col, self.target.field(f.name).type)
        stats = self.stats.setdefault(f.name, _ColumnStats())
        stats.given += given
        if bad is not None:
            stats.bad += int(bad.sum())
            if len(stats.examples) < 3:
                import numpy as np

                for i in np.flatnonzero(bad)[: 3 - len(stats.examples)]:
                    stats.examples.append(repr(col[int(i)].as_py()))
        return values, bad

    def _first_schema(self, table: pa.Table) -> pa.Schema:
        """A new dataset's schema from its first block: normalized types, text values inferred."""
        import pyarrow as pa

        fields = []
        for name, col in zip(table.column_names, table.columns, strict=True):
            t = normalize_type(col.type)
            if is_text(t):
                t = infer_text(col)
                if name == self.event and not is_time(t):
                    t = pa.timestamp("us")
            fields.append(pa.field(name, t))
        if self.event is not None:
            if self.event not in table.column_names:
                raise InvalidInput(
                    f"event-time column '{self.event}' is not in '{self.src.path}'",
                    hint=f"columns: {', '.join(table.column_names)}",
                )
            self._check_event_type(next(f.type for f in fields if f.name == self.event))
        return pa.schema(fields)

    def _check_event_type(self, t: pa.DataType) -> None:
        import pyarrow as pa

        if not (is_time(t) or pa.types.is_null(t)):
            raise SchemaMismatch(
                f"event-time column '{self.event}' holds {t}, not times",
                hint="name a column of timestamps or dates (ISO 8601 text in CSV or JSON)",
            )

    def _check_names(self, names: list[str]) -> None:
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        if dupes or "" in seen:
            raise InvalidInput(
                f"'{self.src.path}' has "
                + (
                    f"duplicate column names: {', '.join(dupes)}"
                    if dupes
                    else "an empty column name"
                ),
                hint="give every column a distinct name",
            )

    def _check_columns(self, table: pa.Table) -> None:
        """Missing and extra columns (sets: a file may have tens of thousands of columns)."""
        import pyarrow as pa

        names, known = table.column_names, set(self.target.names)
        given = set(names)
        extra = [n for n in names if n not in known]
        missing = [n for n in self.target.names if n not in given]
        if not self.evolve and (extra or missing):
            what = []
            if missing:
                what.append("lacks column " + ", ".join(f"'{n}'" for n in missing))
            if extra:
                what.append(
                    "has column " + ", ".join(f"'{n}'" for n in extra) + " not in the dataset"
                )
            raise SchemaMismatch(
                f"'{self.src.path}' " + " and ".join(what),
                hint="make the columns match, or allow schema evolution",
            )
        added = []
        for n in extra:
            col = table[n]
            t = infer_text(col) if is_text(col.type) else normalize_type(col.type)
            t = pa.string() if pa.types.is_null(t) else t
            added.append(pa.field(n, t))
            self._change(f"added column '{n}' ({t}) from '{self.src.path}'")
        if added:
            self.target = pa.schema(list(self.target) + added)
        for n in missing:
            self._change(f"column '{n}' missing from '{self.src.path}': filled with nulls")

    def _widen(self, f: pa.Field, incoming: pa.DataType, quiet: bool = False) -> None:
        import pyarrow as pa

        wider = unify(f.type, incoming)
        if f.name == self.event and not is_time(wider):
            raise SchemaMismatch(
                f"event-time column '{f.name}' of '{self.src.path}' is not parseable as time",
                hint="use ISO 8601 timestamps",
            )
        if wider == f.type:
            return
        if self.original is not None and f.name in self.original.names:
            had = self.original.field(f.name).type
            if not castable(had, wider):
                raise SchemaMismatch(
                    f"column '{f.name}' of '{self.src.path}' holds {incoming}, where the dataset "
                    f"holds {had}: the dataset's earlier versions cannot be read as {wider}",
                    hint="convert the column in the file to the dataset's type",
                )
        self.target = self.target.set(self.target.get_field_index(f.name), pa.field(f.name, wider))
        if not (quiet or self.new):
            self._change(f"column '{f.name}' widened from {f.type} to {wider} by '{self.src.path}'")

    def _change(self, text: str) -> None:
        if not self.new:
            self.changes.append(text)

    def _check_clashes(self) -> None:
        """At the end of a file: a column where most values failed is a type clash, not bad rows."""
        for name, s in self.stats.items():
            if s.bad and s.bad > self.options.max_bad_fraction * s.given:
                t = self.target.field(name).type
                if name == self.event:
                    message = (
                        f"event-time column '{name}' of '{self.src.path}' is not parseable as time"
                    )
                else:
                    message = (
                        f"column '{name}' of '{self.src.path}' does not fit the dataset's type {t}"
                    )
                raise SchemaMismatch(
                    f"{message}: {s.bad} of {s.given} values failed, e.g. {', '.join(s.examples)}",
                    hint="fix the file, or allow schema evolution to change the column's type",
                )

    # output ------------------------------------------------------------------------------------
    def _write(self, table: pa.Table) -> None:
        import pyarrow.compute as pc

        self.src.rows += table.num_rows
        if self.event is not None and table.num_rows:
            lo, hi = pc.min_max(table[self.event]).values()
            lo, hi = lo.as_py(), hi.as_py()
            if lo is not None:
                self.time_min = lo if self.time_min is None else min(self.time_min, lo)
                self.time_max = hi if self.time_max is None else max(self.time_max, hi)
        self.parts.write(table)

    def _reject(self, row: int | None, record: str, reason: str) -> None:
        self.quarantine.add(self.src.path, row, record, reason)

    def finish(self) -> IngestResult:
        import pyarrow as pa

        rows = sum(s.rows for s in self.sources)
        quarantined = sum(s.quarantined_rows for s in self.sources)
        shown = ", ".join(f"'{s.path}'" for s in self.sources[:3])
        schema = self.target
        if schema is not None and self.new:
            schema = pa.schema(
                [
                    pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                    for f in schema
                ]
            )
        try:
            self.parts.close()
            quarantine = self.quarantine.close()
            if self.sources and not rows and (not quarantined or schema is None):
                raise InvalidInput(
                    f"nothing to ingest: {shown} {'has' if len(self.sources) == 1 else 'have'} "
                    "no rows" + (f" that could be read ({quarantined} bad)" if quarantined else ""),
                    hint="ingest files with rows",
                )
            if schema is not None:
                self.parts.conform_to(schema)
                _read_back(schema, self.parts.parts, quarantine)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise InvalidInput(
                f"the data read from {shown} cannot be stored readably: {_one_line(e)}",
                hint="nothing was recorded; simplify the file's unusual columns",
            ) from e
        return IngestResult(
            schema=schema,
            parts=self.parts.parts,
            quarantine=quarantine,
            rows=rows,
            quarantined_rows=quarantined,
            sources=self.sources,
            skipped=self.skipped,
            event_time_min=self.time_min,
            event_time_max=self.time_max,
            schema_changes=self.changes,
        )


def _starts_with_bracket(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4096).lstrip().startswith(b"[")


def _records_table(records: list[dict]) -> pa.Table:
    """Records parsed by ``json`` as a table; a field of mixed types is kept as JSON text."""
    import pyarrow as pa

    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))
    cols = {}
    for n in names:
        values = [r.get(n) for r in records]
        try:
            cols[n] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            cols[n] = pa.array(
                [v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                type=pa.string(),
            )
    return pa.table(cols)


def _too_deep(record: dict) -> str | None:
    """Why a parsed JSON record cannot be stored (a value nested too deep), or None."""
    for name, value in record.items():
        if isinstance(value, dict | list) and value_nesting(value) > MAX_NESTING:
            return f"column '{name}': value nested more than {MAX_NESTING} levels"
    return None


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, default=str)
    except RecursionError:
        return "(nested too deeply to show)"


def _blank(path: Path) -> bool:
    """Whether a (possibly gzipped) text file holds only white space (looks at its first 64 KiB)."""
    import pyarrow as pa

    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(1 << 16)
        return not head.strip() and not stream.read(1)


def _read_back(schema: pa.Schema, parts: list[Part], quarantine: str | None) -> None:
    """Read the staged data as every reader will (schema parsed again, parts decoded in batches).

    Costs a decode of the parts, a fraction of the parse that made them; what fails here would
    otherwise be committed and break every later read of the dataset.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa.ipc.read_schema(pa.py_buffer(schema.serialize().to_pybytes()))
    for t in schema.types:
        if nesting(t) > MAX_NESTING:  # the cap every part's column was checked against
            raise ValueError(f"a column nests {nesting(t)} levels (at most {MAX_NESTING})")
    for part in parts:
        pf = pq.ParquetFile(part.path)
        if not pf.schema_arrow.remove_metadata().equals(schema):
            raise ValueError(f"a part reads back as {pf.schema_arrow}, not as {schema}")
        if sum(b.num_rows for b in pf.iter_batches(batch_size=65_536)) != part.rows:
            raise ValueError(f"a part reads back with other than its {part.rows} rows")
    if quarantine is not None:
        pq.read_table(quarantine)
