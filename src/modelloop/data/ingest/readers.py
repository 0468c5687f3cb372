"""Readers: one per format, each turning a file into tables of rows with their row numbers.

A reader hands each parsed table to ``run.accept(table, row_of)`` (conformance and writing are
the run's), and rows it cannot parse at all to ``run.reject(row, text, reason)``. Text is read in
blocks cut at line ends (:mod:`modelloop.tabular.chunks`), local or remote, gzipped or not.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from modelloop.data.schema import MAX_NESTING, nesting, value_nesting
from modelloop.errors import InvalidInput
from modelloop.tabular.chunks import blocks, head
from modelloop.tabular.locations import open_input, open_stream

if TYPE_CHECKING:
    import pyarrow as pa


class Reader:
    """The readers of one ingest run (``run``: the engine's run of the file being read)."""

    def __init__(self, run, storage: dict | None = None):
        self.run = run
        self.storage = storage  # fsspec options of remote input

    def csv(self, path: str, delimiter: str) -> None:
        import pyarrow as pa
        import pyarrow.csv as csv

        parse = csv.ParseOptions(delimiter=delimiter)
        header = head(path, self.storage)
        if not header.strip():
            raise InvalidInput(f"'{self.run.src.path}' has no header line", hint="ingest a CSV file")
        names = self._csv_names(header.removeprefix(b"\xef\xbb\xbf"), parse)
        line, count = 2, 0
        for body, position in blocks(path, self.run.options.block_size, start=len(header),
                                     options=self.storage):
            line += self._csv_block(body, names, parse, line)
            count += 1
            self.run.report(position)
        if not count:
            # a header without rows still declares the columns
            empty = pa.table({n: pa.nulls(0, pa.string()) for n in names})
            self.run.accept(empty, lambda i: 0)

    def _csv_names(self, header: bytes, parse) -> list[str]:
        import pyarrow as pa
        import pyarrow.csv as csv

        if b"\x00" in header:
            raise InvalidInput(f"'{self.run.src.path}' is not a text file", hint="is it a CSV?")
        header.decode("utf-8")  # a UnicodeDecodeError is reported as unreadable
        names = csv.read_csv(pa.py_buffer(header + b"\n"), parse_options=parse).column_names
        self.run.conformer.check_names(names)
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
                    use_threads=threads, block_size=self.run.options.parse_block, column_names=names
                ),
                parse_options=csv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=keep),
                convert_options=csv.ConvertOptions(column_types=types),
            )

        types = self.run.conformer.types_for(names)
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
            self.run.reject(
                first_line - 1 + r.number,
                r.text,
                f"expected {r.expected_columns} fields, got {r.actual_columns}",
            )
        self.run.src.quarantined_rows += len(invalid)
        total = table.num_rows + len(invalid)

        def line_of(i: int) -> int:
            line = first_line + i
            for b in bad_lines:
                if b <= line:
                    line += 1
            return line

        if len(invalid) > self.run.options.max_bad_fraction * total and total >= 2:
            example = invalid[0]
            raise InvalidInput(
                f"'{self.run.src.path}': {len(invalid)} of {total} rows have the wrong number of "
                f"fields (expected {example.expected_columns}; line "
                f"{first_line - 1 + example.number}: {example.text[:60]!r})",
                hint="check the delimiter and format of the file",
            )
        self.run.accept(table, line_of)
        return total

    def parquet(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with open_input(path, self.storage) as fh:
            pf = pq.ParquetFile(fh)
            total, seen = max(pf.metadata.num_rows, 1), 0
            for batch in pf.iter_batches(batch_size=262_144):
                table = pa.Table.from_batches([batch])
                start = seen + 1
                self.run.accept(table, lambda i, s=start: s + i)
                seen += batch.num_rows
                self.run.report(self.run.src.size * seen // total)
            if pf.metadata.num_rows == 0:
                self.run.accept(pf.schema_arrow.empty_table(), lambda i: 0)

    def jsonl(self, path: str) -> None:
        import pyarrow as pa
        import pyarrow.json as pj

        line = 1
        for block, position in blocks(path, self.run.options.block_size, options=self.storage):
            body = block if isinstance(block, bytes) else block.to_pybytes()
            if line == 1:
                body = body.removeprefix(b"\xef\xbb\xbf")
            try:
                if not body.strip() or b"\n\n" in body or b"\n\r\n" in body:
                    raise pa.ArrowInvalid("blank lines")  # numbering needs the slow path
                table = pj.read_json(pa.BufferReader(body))
                if any(nesting(t) > MAX_NESTING for t in table.schema.types):
                    raise pa.ArrowInvalid("too deep")  # the slow path quarantines those rows
                self.run.accept(table, lambda i, s=line: s + i)
            except pa.ArrowInvalid:
                # a line that is not JSON, or a field whose type changes between lines
                self._json_lines_slowly(body, line)
            line += body.count(b"\n") + (not body.endswith(b"\n"))
            self.run.report(position)

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
                self.run.reject(first_line + k, text.decode("utf-8", "replace"), reason)
                self.run.src.quarantined_rows += 1
                continue
            records.append(value)
            numbers.append(first_line + k)
        if records:
            self.run.accept(_records_table(records), lambda i: numbers[i])

    def json_array(self, path: str) -> None:
        with open_stream(path, self.storage) as fh:
            try:
                records = json.loads(fh.read())
            except RecursionError:
                raise InvalidInput(
                    f"'{self.run.src.path}' is nested too deeply to read",
                    hint=f"values may nest at most {MAX_NESTING} levels; "
                    "JSON Lines would quarantine only the rows that nest deeper",
                ) from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput(
                f"'{self.run.src.path}' is not a list of JSON objects",
                hint="use JSON Lines (one object per line) or a list of objects",
            )
        kept, numbers = [], []
        for i, r in enumerate(records):
            if reason := _too_deep(r):
                self.run.reject(i + 1, _json_text(r), reason)
                self.run.src.quarantined_rows += 1
            else:
                kept.append(r)
                numbers.append(i + 1)
        if kept:
            self.run.accept(_records_table(kept), lambda i: numbers[i])


def starts_with_bracket(path: str, options: dict | None = None) -> bool:
    """Whether a JSON file holds an array (else it is read as JSON Lines)."""
    with open_stream(path, options) as fh:
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
