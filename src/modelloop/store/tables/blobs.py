"""The blobs unfinished writes are putting in the artifact store."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

# Blobs an unfinished write has put (or is putting) in the artifact store. A writer lists them
# before uploading and deletes the rows in the transaction that references them, so a crash
# leaves rows that name exactly what to clean up.
pending_blobs = sa.Table(
    "pending_blobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("txn", sa.String(64), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
