"""Tables of tracked work: jobs, their metric points and the artifacts they produced."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "kind", sa.String(32), nullable=False, index=True
    ),  # train | tune | trial | evaluate | …
    sa.Column("name", sa.String(256)),
    sa.Column(
        "status", sa.String(32), nullable=False, index=True
    ),  # queued|running|succeeded|failed|cancelled
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("jobs.id"), index=True),
    sa.Column("spec", sa.Text, nullable=False),  # JSON: what to run (kind-specific)
    sa.Column("params", sa.Text, nullable=False),  # JSON: hyper-parameters and settings
    sa.Column("metrics", sa.Text, nullable=False),  # JSON: final scalar metrics
    sa.Column("inputs", sa.Text, nullable=False),  # JSON: dataset versions, models … (lineage in)
    sa.Column("outputs", sa.Text, nullable=False),  # JSON: artifacts produced (lineage out)
    sa.Column("info", sa.Text, nullable=False),  # JSON: split, code fingerprint, packages, gate …
    sa.Column("error", sa.Text),
    sa.Column("log_digest", sa.String(64)),
    sa.Column("host", sa.String(256)),
    sa.Column("pid", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)

job_metrics = sa.Table(
    "job_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("key", sa.String(256), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("step", sa.Integer),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)


# Artifacts a job produced (model packages, reports, logs of trials …), by name.
job_artifacts = sa.Table(
    "job_artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("job_id", "name", name="uq_job_artifacts_job_name"),
)


#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(jobs, "log_digest"), (job_artifacts, "digest")]
