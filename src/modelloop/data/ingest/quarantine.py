"""The quarantine: rows ingest rejected, with their source, row (line) number, raw record and
reason, written to ``quarantine.parquet`` beside the parts (``modelloop data quarantine`` shows
them)."""

from __future__ import annotations

from pathlib import Path

QUARANTINE_COLUMNS = ("source", "row", "record", "reason")


class Quarantine:
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
