"""Leases: which process holds a role (the controller's leadership) and until when."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

# One row per role. ``term`` grows by one each time the holder changes (a fencing token: a record
# written by the leader of term 3 is told apart from one of term 4); ``expires_at`` is on the
# store's clock, so holders on several machines compare against one clock.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),
    sa.Column("term", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
