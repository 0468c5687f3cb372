"""Tables of triggers: the triggers, each cause they fired for, and the files watched folders saw.

``trigger_firings`` is what makes a cause fire its action once: one row per (trigger, cause key),
unique, inserted in the transaction that moves the trigger's cursor. ``watched_files`` remembers
each file of a watched location from the first time it was seen, so a file is ingested once, and
only once its size and version (mtime, ETag) held still.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("cause", sa.Text, nullable=False),  # JSON: {"on": ..., ...}
    sa.Column("action", sa.Text, nullable=False),  # JSON: {"do": ..., ...}
    sa.Column("target", sa.String(300), nullable=False, index=True),  # loop:L, endpoint:E, ...
    sa.Column("concurrency", sa.String(32), nullable=False),  # skip | queue | cancel-previous
    sa.Column("missed", sa.String(32), nullable=False),  # skip | catch-up-once (cron)
    sa.Column("retry", sa.Text, nullable=False),  # JSON: {"max_attempts", "backoff_seconds"}
    sa.Column("paused", sa.Boolean, nullable=False, default=False),
    sa.Column("owner", sa.String(256), index=True),  # e.g. loop:NAME for what loop apply made
    # JSON: what the cause remembers between looks (last cron slot, rows counted so far)
    sa.Column("cursor", sa.Text, nullable=False),
    sa.Column("after_event", sa.Integer, nullable=False, default=0),  # events before it: ignored
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

trigger_firings = sa.Table(
    "trigger_firings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trigger", sa.String(256), nullable=False),
    sa.Column("cause_key", sa.String(1024), nullable=False),  # event:<id>, cron:<slot>, file:...
    sa.Column("cause", sa.Text, nullable=False),  # JSON: what happened, for history and actions
    sa.Column("action", sa.Text, nullable=False),  # JSON: the action as it was when it fired
    sa.Column("target", sa.String(300), nullable=False),
    # pending | running | succeeded | failed | skipped | cancelled
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", sa.DateTime(timezone=True)),  # a retry waits for its backoff
    sa.Column("claimed_by", sa.String(300)),  # host:pid:instance of who runs it
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("started", sa.Text),  # JSON: what the action started ({"run_id"}, {"rollout_id"})
    sa.Column("result", sa.Text),  # JSON
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("trigger", "cause_key", name="uq_trigger_firings_trigger_cause"),
    sa.Index("ix_trigger_firings_status_target", "status", "target"),
)

watched_files = sa.Table(
    "watched_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trigger", sa.String(256), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("version", sa.String(256), nullable=False),  # mtime in ns, or the object's ETag
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),  # since size+version held
    sa.Column("firing_id", sa.Integer),  # set once: the file's firing (it is ingested then)
    sa.UniqueConstraint("trigger", "path", name="uq_watched_files_trigger_path"),
)

BLOB_COLUMNS: list = []
