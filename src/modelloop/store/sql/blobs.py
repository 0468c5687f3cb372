"""SQL of blob records: the pending lists of unfinished writers, and which blobs records use."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import sqlalchemy as sa

from modelloop.store.interfaces.blobs import BlobRecordStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables import BLOB_REFERENCES
from modelloop.store.tables.blobs import pending_blobs


class SqlBlobs(SqlBase, BlobRecordStore):
    def add_pending_blobs(self, txn: str, digests: Iterable[str]) -> None:
        rows = [
            {
                "txn": txn,
                "digest": d,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "created_at": utcnow(),
            }
            for d in digests
        ]
        if rows:
            with self._write() as conn:
                conn.execute(pending_blobs.insert(), rows)

    def pending_transactions(self) -> list[dict]:
        with self._read() as conn:
            rows = [
                row_dict(r)
                for r in conn.execute(sa.select(pending_blobs).order_by(pending_blobs.c.id))
            ]
        txns: dict[str, dict] = {}
        for r in rows:
            t = txns.setdefault(
                r["txn"],
                {
                    "txn": r["txn"],
                    "host": r["host"],
                    "pid": r["pid"],
                    "created_at": r["created_at"],
                    "digests": [],
                },
            )
            t["digests"].append(r["digest"])
        return list(txns.values())

    def drop_pending(self, txn: str) -> None:
        with self._write() as conn:
            conn.execute(pending_blobs.delete().where(pending_blobs.c.txn == txn))

    def referenced_digests(
        self, digests: Iterable[str], *, ignore_txn: str | None = None
    ) -> set[str]:
        wanted = list(set(digests))
        found: set[str] = set()
        with self._read() as conn:
            for table, column in BLOB_REFERENCES:
                col = table.c[column]
                for i in range(0, len(wanted), 500):
                    found |= set(
                        conn.execute(sa.select(col).where(col.in_(wanted[i : i + 500]))).scalars()
                    )
            # a digest another live writer is about to reference counts as referenced too
            for i in range(0, len(wanted), 500):
                found |= set(
                    conn.execute(
                        sa.select(pending_blobs.c.digest).where(
                            pending_blobs.c.digest.in_(wanted[i : i + 500]),
                            pending_blobs.c.txn != (ignore_txn or ""),
                        )
                    ).scalars()
                )
        return found
