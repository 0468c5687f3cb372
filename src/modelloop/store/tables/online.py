"""Online learning: labelled events per endpoint, and each online variant's published model."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

# One row per endpoint that takes labelled events: the last seq handed out (appenders take this
# row's lock, so seqs commit in order with no gap) and how many events intake refused.
online_streams = sa.Table(
    "online_streams",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
)

# The labelled events themselves, durable before intake acknowledges them: an append is cut into
# blocks of at most 256 seqs (first_seq..last_seq), written in one transaction; ``events`` holds
# the block's bytes (store/sql/event_blocks.py: names once and values packed when the events are
# alike, else JSON). A row per event cost more than River's own learning of it (SQL per row).
online_event_blocks = sa.Table(
    "online_event_blocks",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("first_seq", sa.BigInteger, primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("events", sa.LargeBinary, nullable=False),
)

# One row per online variant: the learner's checkpoint (``state``: its model, metrics and guard,
# with ``applied_seq``, the last event they learned) and the model it publishes for serving
# (``model``), written together; ``revision`` grows by one per write, which serving polls.
online_models = sa.Table(
    "online_models",
    metadata,
    sa.Column("endpoint", sa.String(128), primary_key=True),
    sa.Column("variant", sa.String(128), primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("applied_seq", sa.BigInteger, nullable=False),
    sa.Column("model", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=True),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The lease term of the learner that wrote it (None: written outside a lease): a learner
    # whose lease was taken over (a lower term) can no longer overwrite its successor's work.
    sa.Column("term", sa.BigInteger, nullable=True),
)
