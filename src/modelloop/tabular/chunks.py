"""Cutting tabular files into pieces that parse on their own.

Text (CSV, TSV, JSON Lines) is cut at line ends: into *blocks* read one after another (ingest
parses a block while the last one is written), or into *byte ranges* planned up front (batch
transform scores each range anywhere, and a resumed run finds the same ranges). A gzip stream
cannot be entered in the middle, so it is one range, read in blocks. Parquet is cut into runs of
row groups.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelloop.tabular.formats import DELIMITERS, is_gzip
from modelloop.tabular.locations import InputFile, open_input, open_raw, open_stream

#: Bytes read at a time while looking for a line end.
_PEEK = 1 << 16


def first_line(fh, limit: int = 1 << 24) -> bytes:
    """The next line of a binary file object, with its line end (at most ``limit`` bytes)."""
    data = b""
    while b"\n" not in data and len(data) < limit:
        more = fh.read(_PEEK)
        if not more:
            break
        data += more
    cut = data.find(b"\n")
    return data if cut < 0 else data[: cut + 1]


def head(path: str, options: dict | None = None) -> bytes:
    """The first line of a text file (decompressed when gzipped), with its line end."""
    with open_stream(path, options) as stream:
        return first_line(stream)


def is_blank(path: str, options: dict | None = None) -> bool:
    """Whether a text file holds only white space (looks at its first 64 KiB)."""
    with open_stream(path, options) as stream:
        start = stream.read(_PEEK)
        return not start.strip() and not stream.read(1)


def last_newline(buf) -> int:
    """Index of the last newline in a buffer, or -1; looks at the tail first (lines are short)."""
    import numpy as np

    arr = np.frombuffer(buf, dtype=np.uint8)
    window = _PEEK
    while True:
        tail = arr[-window:]
        hits = np.flatnonzero(tail == 10)
        if len(hits):
            return len(arr) - len(tail) + int(hits[-1])
        if window >= len(arr):
            return -1
        window *= 16


def blocks(path: str, size: int, start: int = 0, end: int | None = None,
           options: dict | None = None) -> Iterator[tuple[object, int]]:
    """A text file from byte ``start`` (to ``end``) in blocks of about ``size`` bytes cut at
    line ends.

    Yields ``(block, bytes of the file read so far)``. Plain files are read at offsets into
    pyarrow buffers, so no block is copied in Python and memory stays one block; gzip streams
    are read in order (``start`` counts decompressed bytes), carrying a partial line over to the
    next block.
    """
    if is_gzip(path):
        yield from _gzip_blocks(path, size, start, options)
        return
    with open_raw(path, options) as fh:
        end, offset = fh.size() if end is None else end, start
        while offset < end:
            fh.seek(offset)
            buf = fh.read_buffer(min(size, end - offset))
            if offset + len(buf) < end:
                cut = last_newline(buf) + 1
                if cut == 0:  # one line longer than a block: read a bigger block
                    size *= 2
                    continue
                buf = buf.slice(0, cut)
            offset += len(buf)
            yield buf, offset


def _gzip_blocks(path: str, size: int, start: int, options) -> Iterator[tuple[bytes, int]]:
    import pyarrow as pa

    raw = open_raw(path, options)
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


def header_names(line: bytes, fmt: str) -> list[str]:
    """The column names in a CSV or TSV header line (parsed as pyarrow parses the rows)."""
    import pyarrow as pa
    import pyarrow.csv as csv

    parse = csv.ParseOptions(delimiter=DELIMITERS[fmt])
    line = line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n") + b"\n"
    return csv.read_csv(pa.py_buffer(line), parse_options=parse).column_names


# -- planning: byte ranges and row groups ---------------------------------------------------------
def plan_file(f: InputFile, index: int, *, chunk_bytes: int, chunk_rows: int,
              options: dict | None = None) -> list[dict]:
    """The chunks of one file: byte ranges at line ends (text), runs of row groups (Parquet),
    the whole stream (gzip). A CSV or TSV header is not in any range."""
    if f.format == "parquet":
        return _plan_parquet(f, index, chunk_rows, options)
    if f.gzip:
        return [{"file": index, "start": 0, "end": f.size, "input_bytes": f.size}]
    chunks = []
    with open_input(f.path, options) as fh:
        header = first_line(fh) if f.format in DELIMITERS else b""
        start = len(header)
        while start < f.size:
            end = min(start + chunk_bytes, f.size)
            if end < f.size:
                fh.seek(end)
                tail = first_line(fh)  # the rest of the line the cut fell in
                end = min(end + len(tail), f.size)
            chunks.append({"file": index, "start": start, "end": end, "input_bytes": end - start})
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


def range_blocks(f: dict | InputFile, chunk: dict, size: int,
                 options: dict | None = None) -> Iterator[object]:
    """The text of a planned range in blocks at line ends (a gzip range: the stream after its
    header line)."""
    path = f["path"] if isinstance(f, dict) else f.path
    fmt = f["format"] if isinstance(f, dict) else f.format
    if is_gzip(path):
        skip = len(head(path, options)) if fmt in DELIMITERS else 0
        for block, _ in _gzip_blocks(path, size, skip, options):
            yield block
        return
    for block, _ in blocks(path, size, chunk["start"], chunk["end"], options):
        yield block
