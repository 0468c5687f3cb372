"""Tables of real-time serving: endpoints, their rollouts, capture files and live statistics.

An endpoint's ``spec`` (JSON) holds its variants, capture settings and options; ``revision`` goes up
on every change so that servers notice a change with one cheap query. A rollout row is the whole
state of a deployment in progress (the spec before, the steps, the current step), so that any
process can pick it up after a restart. Capture files are blobs in the artifact store, indexed here
by endpoint, variant and hour, and their records' inference ids in ``capture_ids``. Statistics are cumulative counters that each server process writes
every second, summed by readers.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("spec", sa.Text, nullable=False),  # JSON: variants, capture, options
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),  # in_service | updating | rolling_back
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(256)),
)

endpoint_rollouts = sa.Table(
    "endpoint_rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endpoint", sa.String(256), nullable=False, index=True),
    # running | completed | rolled_back | failed
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("strategy", sa.String(32), nullable=False),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # JSON: before/after specs, steps, step, checks
    sa.Column("reason", sa.Text),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.String(256)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)

capture_files = sa.Table(
    "capture_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endpoint", sa.String(256), nullable=False),
    sa.Column("variant", sa.String(256), nullable=False),
    sa.Column("hour", sa.DateTime(timezone=True), nullable=False),  # partition: yyyy/mm/dd/hh
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # its records' inference ids are in capture_ids (false: written before that index existed)
    sa.Column("ids_indexed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_capture_files_endpoint_hour", "endpoint", "hour"),
)

# The inference ids of captured records, written with their file's index row: a label posted as
# feedback is matched with one indexed lookup instead of reading every capture file.
capture_ids = sa.Table(
    "capture_ids",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("file_id", sa.Integer, nullable=False),
    sa.Column("endpoint", sa.String(256), nullable=False),
    sa.Column("inference_id", sa.String(160), nullable=False),  # long ids: a sha256 of them
    sa.Column("rows", sa.Integer, nullable=False),  # rows of the request (ids NAME:i if > 1)
    sa.Index("ix_capture_ids_endpoint_inference_id", "endpoint", "inference_id"),
)

endpoint_stats = sa.Table(
    "endpoint_stats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("server", sa.String(128), nullable=False),  # host:pid:start of the server process
    sa.Column("endpoint", sa.String(256), nullable=False, index=True),
    sa.Column("variant", sa.String(256), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: counters and histogram buckets
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("server", "endpoint", "variant", name="uq_endpoint_stats_key"),
)

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(capture_files, "digest")]
