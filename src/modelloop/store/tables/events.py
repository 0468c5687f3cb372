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

# Consumer groups of the event stream (modelloop.events): how far each group has been handed
# events. ``position`` is the id of the last event given to any member; it only moves forward.
event_groups = sa.Table(
    "event_groups",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Deliveries not acknowledged yet (a group's pending entries): one row per event handed to a
# member, deleted by its ack. A member that died leaves its rows for another to claim.
event_deliveries = sa.Table(
    "event_deliveries",
    metadata,
    sa.Column("group_name", sa.String(128), primary_key=True),
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_event_deliveries_member", "group_name", "consumer", "event_id"),
    sa.Index("ix_event_deliveries_idle", "group_name", "delivered_at"),
)
