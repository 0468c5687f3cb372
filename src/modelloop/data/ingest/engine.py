"""The ingest engine: input files (CSV, TSV, Parquet, JSON Lines, JSON; local or ``s3://``) ->
validated Parquet parts in a folder.

This module is pure: it reads files and writes into a staging folder; recording a dataset version
(metadata, artifacts, crash safety) is :mod:`modelloop.data.datasets`' job.

How a file flows:

1. Paths are expanded (files, folders, globs, remote prefixes: :mod:`modelloop.tabular`), each file is hashed (sha256); files whose hash is in
   ``skip_hashes``, or seen earlier in the same call, are skipped and reported.
2. The file is cut into blocks of ``block_size`` bytes at line ends, and each block is parsed with
   pyarrow's multithreaded reader (``pyarrow.csv.read_csv`` / ``pyarrow.json.read_json``) with the
   column types fixed from the dataset's schema. Blocks keep memory bounded whatever the file's
   size, and give the speed of pyarrow's whole-file reader (its streaming reader converts on one
   thread and is about half as fast). Like pyarrow's own defaults, quoted values may not contain
   line breaks. (:mod:`~modelloop.data.ingest.readers`)
3. A block that does not convert (a value that is not a number, say) is parsed again as text and
   conformed column by column (:mod:`modelloop.data.schema`): failing values put their row in
   quarantine with a reason naming the column and the value; only that block pays. For a new
   dataset, types are instead widened over the whole file (int -> float -> string), so a first
   version never quarantines values because of block-wise type inference.
   (:mod:`~modelloop.data.ingest.conformance`, :mod:`~modelloop.data.ingest.quarantine`)
4. Conformed blocks are appended to Parquet parts (``part_rows`` rows each, written on a second
   thread while the next block is parsed); parts written before the schema widened are rewritten
   at the end so that all parts share exactly the resulting schema, in the dataset's column order.
   (:mod:`~modelloop.data.ingest.writer`)
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

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop.common.hashing import sha256_stream
from modelloop.data.ingest.conformance import Conformer
from modelloop.data.ingest.quarantine import Quarantine
from modelloop.data.ingest.readers import Reader, starts_with_bracket
from modelloop.data.ingest.writer import Part, Parts, read_back
from modelloop.errors import InvalidInput, ModelloopError
from modelloop.tabular.chunks import is_blank
from modelloop.tabular.formats import FORMATS, check_format
from modelloop.tabular.locations import InputFile, find_files, open_input

if TYPE_CHECKING:
    import pyarrow as pa


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
    storage_options: dict = field(default_factory=dict)  # fsspec options of ``s3://`` input
    required: tuple[str, ...] = ()  # columns a row must have a value in, else quarantined
    source_name: str | None = None  # what the (one) input is recorded as: a stream's batch
    source_names: tuple[str, ...] = ()  # what each input file found is recorded as (in order)
    fill_missing: bool = False  # a column absent from an input is nulls (a stream's JSON rows)


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
    if options.format is not None:
        check_format(options.format)
    files = find_files(paths, options.format, formats=FORMATS, options=options.storage_options)
    if options.source_names:
        if len(options.source_names) != len(files):
            raise InvalidInput(f"{len(options.source_names)} source names for {len(files)} "
                               "files", hint="give one name per file, in order")  # fmt: skip
        files = [replace(f, shown=n) for f, n in zip(files, options.source_names, strict=True)]
    run = _Run(Path(staging_dir), schema, options, progress, sum(f.size for f in files))
    for f in files:
        run.ingest(f)
    return run.finish()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class _Run:
    """One ingest call: files read in order into one conformer, one set of parts, one quarantine."""

    def __init__(self, staging, schema, options: IngestOptions, progress, total_bytes: int):
        self.options = options
        self.parts = Parts(staging, options.part_rows, options.compression)
        self.quarantine = Quarantine(staging / "quarantine.parquet", options.compression)
        self.conformer = Conformer(
            schema, evolve=options.allow_schema_evolution, event=options.event_time_column,
            max_bad_fraction=options.max_bad_fraction, quarantine=self.quarantine,
            required=options.required, fill_missing=options.fill_missing)
        self.read = Reader(self, options.storage_options)
        self.sources: list[SourceFile] = []
        self.skipped: list[str] = []
        self.seen: set[str] = set(options.skip_hashes)
        self.time_min = self.time_max = None
        self.progress, self.total, self.done = progress, total_bytes, 0
        self.event = options.event_time_column

    # one file -----------------------------------------------------------------------------------
    def ingest(self, f: InputFile) -> None:
        shown, fmt, size = self.options.source_name or f.name, f.format, f.size
        try:
            with open_input(f.path, self.options.storage_options) as fh:
                digest = sha256_stream(fh)
        except OSError as e:
            raise InvalidInput(
                f"cannot read '{shown}': {e.strerror or _one_line(e)}", hint="check the file"
            ) from e
        if digest in self.seen:
            self.skipped.append(shown)
            self._tick(size)
            return
        self.seen.add(digest)
        self.src = SourceFile(shown, f.path, size, digest, fmt)
        self.conformer.begin(self.src)
        storage = self.options.storage_options
        import pyarrow as pa

        try:
            if size == 0 or (fmt != "parquet" and is_blank(f.path, storage)):
                raise InvalidInput(
                    f"'{shown}' is empty: nothing to ingest", hint="ingest a file with rows"
                )
            if fmt == "parquet":
                self.read.parquet(f.path)
            elif fmt == "json" and starts_with_bracket(f.path, storage):
                self.read.json_array(f.path)
            elif fmt in ("jsonl", "json"):
                self.read.jsonl(f.path)
            else:
                self.read.csv(f.path, "\t" if fmt == "tsv" else ",")
        except ModelloopError:
            raise
        except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as e:
            raise InvalidInput(
                f"cannot read '{shown}' as {fmt}: {_one_line(e)}",
                hint="check the file's format and content",
            ) from e
        self.conformer.check_clashes()
        self.sources.append(self.src)
        self.done += size
        self._tick(0)

    def _tick(self, extra: int) -> None:
        self.done += extra
        if self.progress:
            self.progress(min(self.done, self.total), self.total)

    def report(self, position: int) -> None:
        if self.progress:
            self.progress(min(self.done + position, self.total), self.total)

    # output ------------------------------------------------------------------------------------
    def accept(self, table: pa.Table, row_of: Callable[[int], int]) -> None:
        """Conform a table a reader parsed, and write what conforms."""
        self._write(self.conformer.conform(table, row_of))

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

    def reject(self, row: int | None, record: str, reason: str) -> None:
        self.conformer.reject(row, record, reason)

    def finish(self) -> IngestResult:
        import pyarrow as pa

        rows = sum(s.rows for s in self.sources)
        quarantined = sum(s.quarantined_rows for s in self.sources)
        shown = ", ".join(f"'{s.path}'" for s in self.sources[:3])
        schema = self.conformer.target
        if schema is not None and self.conformer.new:
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
                read_back(schema, self.parts.parts, quarantine)
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
            schema_changes=self.conformer.changes,
        )


