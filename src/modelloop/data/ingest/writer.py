"""Writing the staged Parquet parts, and reading them back before anything is recorded."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop.data.schema import MAX_NESTING, align_table, nesting

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Part:
    """One Parquet file written into the staging folder."""

    path: str
    rows: int


class Parts:
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


def read_back(schema: pa.Schema, parts: list[Part], quarantine: str | None) -> None:
    """Read the staged data as every reader will (schema parsed again, parts decoded).

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
        if sum(_decoded_rows(pf, i) for i in range(pf.num_row_groups)) != part.rows:
            raise ValueError(f"a part reads back with other than its {part.rows} rows")
    if quarantine is not None:
        pq.read_table(quarantine)


def _decoded_rows(pf, group: int, at_once: int = 1 << 18) -> int:
    """The rows of row group ``group`` decoded: at once when it is a block's (its columns in
    parallel; ``iter_batches`` decodes on one thread), in batches when it is larger (a part
    rewritten whole by :meth:`Parts.conform_to`), so memory stays a block's."""
    if pf.metadata.row_group(group).num_rows <= at_once:
        return pf.read_row_group(group).num_rows
    return sum(b.num_rows for b in pf.iter_batches(batch_size=65_536, row_groups=[group]))
