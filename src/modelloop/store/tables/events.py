"""The workspace event log."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

# The workspace event log: one row per change worth reacting to (consumed by triggers).
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(256), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)
