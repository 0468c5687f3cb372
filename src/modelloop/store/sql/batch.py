"""SQL of batch transforms.

The hot path is one small insert per finished chunk; a resumed transform reads its finished
chunks back with one query.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.interfaces.batch import BatchStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.batch import transform_chunks


class SqlBatch(SqlBase, BatchStore):
    """Chunk records of batch transforms."""

    def record_transform_chunk(
        self,
        *,
        transform_key: str,
        chunk: int,
        job_id: int,
        rows: int,
        error_rows: int,
        input_bytes: int,
        part_digest: str,
        errors_digest: str | None,
    ) -> bool:
        """Record a finished chunk; False if it was already recorded (the first record wins)."""
        exists = sa.select(transform_chunks.c.id).where(
            transform_chunks.c.transform_key == transform_key, transform_chunks.c.chunk == chunk
        )
        with self._write() as conn:
            if conn.execute(exists).first() is not None:
                return False
            conn.execute(
                transform_chunks.insert().values(
                    transform_key=transform_key,
                    chunk=chunk,
                    job_id=job_id,
                    rows=rows,
                    error_rows=error_rows,
                    input_bytes=input_bytes,
                    part_digest=part_digest,
                    errors_digest=errors_digest,
                    created_at=utcnow(),
                )
            )
        return True

    def transform_chunks(self, transform_key: str) -> dict[int, dict]:
        """chunk index -> its record, for every finished chunk of the transform."""
        q = sa.select(transform_chunks).where(transform_chunks.c.transform_key == transform_key)
        with self._read() as conn:
            return {r.chunk: row_dict(r) for r in conn.execute(q)}

    def transform_progress(self, transform_key: str) -> dict:
        """Totals over the finished chunks: ``{"chunks", "rows", "error_rows", "input_bytes"}``."""
        c = transform_chunks.c
        q = sa.select(
            sa.func.count(c.id),
            sa.func.coalesce(sa.func.sum(c.rows), 0),
            sa.func.coalesce(sa.func.sum(c.error_rows), 0),
            sa.func.coalesce(sa.func.sum(c.input_bytes), 0),
        ).where(c.transform_key == transform_key)
        with self._read() as conn:
            n, rows, errors, size = conn.execute(q).one()
        return {"chunks": n, "rows": int(rows), "error_rows": int(errors), "input_bytes": int(size)}
