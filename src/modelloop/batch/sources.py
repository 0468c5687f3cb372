"""Where a transform reads from and writes to, and how its input is cut into chunks.

A transform's input is a list of files (local paths, folders, globs or ``s3://`` URLs) in CSV,
TSV, Parquet or JSON Lines (text optionally gzipped), or the parts of a dataset version. Finding,
opening and cutting files is :mod:`modelloop.tabular`'s, shared with ingest; the *chunk plan*
(:func:`~modelloop.tabular.chunks.plan_file`) is a pure function of the files, so a resumed
transform finds the same chunks, and a chunk reads the same rows on any machine. This module
reads a planned chunk's rows and the input's column names.
"""

from __future__ import annotations

from modelloop.errors import InvalidInput
from modelloop.tabular.chunks import first_line, header_names, range_blocks
from modelloop.tabular.formats import DELIMITERS, is_gzip
from modelloop.tabular.locations import InputFile, find_files, open_input, open_stream

#: Formats a transform reads (a JSON array cannot be cut into chunks) and writes.
INPUT_FORMATS = ("csv", "tsv", "parquet", "jsonl")
EXTENSIONS = {"csv": ".csv", "tsv": ".tsv", "parquet": ".parquet", "jsonl": ".jsonl"}
FORMATS = tuple(EXTENSIONS)

def find_inputs(location: str, fmt: str | None = None,
                options: dict | None = None) -> list[InputFile]:
    """Expand a file, folder, glob or ``s3://`` prefix to the transform's input files."""
    return find_files(location, fmt, formats=INPUT_FORMATS, options=options)


def input_columns(f: InputFile, options: dict | None = None) -> list[str]:
    """The column names of an input file (CSV header, Parquet schema, first JSON object's keys)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if f.format == "parquet":
            with open_input(f.path, options) as fh:
                return list(pq.ParquetFile(fh).schema_arrow.names)
        with open_stream(f.path, options) as fh:
            line = first_line(fh)
            if not line.strip():
                raise InvalidInput(f"'{f.path}' is empty", hint="give a file with a header and rows")
            if f.format in DELIMITERS:
                if b"\x00" in line:
                    raise InvalidInput(f"'{f.path}' is not a text file", hint="is it a CSV?")
                names = header_names(line, f.format)
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


# -- reading one chunk ---------------------------------------------------------------------------
def read_chunk(chunk: dict, layout: dict, artifacts=None):
    """The chunk's rows as Arrow record batches of at most ``layout['batch_rows']`` rows.

    Only the columns the transform uses are read. Text is parsed with each column's type
    inferred from the chunk; the model's signature casts the features afterwards.
    """

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
    size = _GZIP_BLOCK if is_gzip(f["path"]) else max(1, chunk["end"] - chunk["start"])
    for block in range_blocks(f, chunk, size, options):
        yield from _parse(block, f, columns, layout).to_batches(max_chunksize=layout["batch_rows"])


#: Decompressed bytes of a gzipped input parsed at once (a gzip stream is one chunk).
_GZIP_BLOCK = 16 << 20


def _parse(block, f: dict, columns: list[str], layout: dict):
    """One block of a text chunk as a table of the used columns.

    The model's ``double`` features are parsed as float64 straight away (``double_columns``,
    fed and not written): inferring them costs a failed integer parse of every block, about a
    fifth of the parse, and the signature casts them to float64 anyway. A block where one of
    them holds something that is no number is parsed again with every type inferred, so
    scoring finds that row and names it in the error file, as before."""
    import pyarrow as pa

    if f["format"] in DELIMITERS:
        import pyarrow.csv as csv

        def read(types: dict):
            return csv.read_csv(
                pa.BufferReader(block),
                read_options=csv.ReadOptions(column_names=f["columns"], block_size=1 << 22,
                                             use_threads=layout.get("reader_threads", True)),
                parse_options=csv.ParseOptions(delimiter=DELIMITERS[f["format"]]),
                convert_options=csv.ConvertOptions(include_columns=columns, column_types=types),
            )

        doubles = {c: pa.float64() for c in layout.get("double_columns", ())}
        if doubles:
            try:
                return read(doubles)
            except pa.ArrowInvalid:
                pass
        return read({})
    import pyarrow.json as pj

    table = pj.read_json(pa.BufferReader(block), read_options=pj.ReadOptions(block_size=1 << 22))
    return table.select([c for c in columns if c in table.column_names])
