"""The metadata tables (SQLAlchemy Core). Changing them needs a new Alembic migration."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("event_time_column", sa.String(256)),
    sa.Column("description", sa.Text),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("schema_json", sa.Text, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("added_rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined_rows", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("event_time_min", sa.DateTime(timezone=True)),
    sa.Column("event_time_max", sa.DateTime(timezone=True)),
    sa.Column("schema_changes", sa.Text),
    sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
)

# A part belongs to the version that added it; version N's data is every data part of versions <= N.
dataset_parts = sa.Table(
    "dataset_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False, index=True
    ),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "data" | "quarantine"
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

dataset_sources = sa.Table(
    "dataset_sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column(
        "version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False, index=True
    ),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined_rows", sa.BigInteger, nullable=False),
    sa.Index("ix_dataset_sources_dataset_sha", "dataset_id", "sha256"),
)

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

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_REFERENCES = [(dataset_parts, "digest")]

# -- tracked work (jobs) ---------------------------------------------------------------------------
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

BLOB_REFERENCES.append((jobs, "log_digest"))

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

BLOB_REFERENCES.append((job_artifacts, "digest"))

# -- model registry --------------------------------------------------------------------------------
models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("description", sa.Text),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(256)),
    sa.Column("status", sa.String(16), nullable=False),  # pending | approved | rejected
    sa.Column("status_by", sa.String(256)),
    sa.Column("status_at", sa.DateTime(timezone=True)),
    sa.Column("status_reason", sa.Text),
    sa.Column("package_hash", sa.String(64), nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("task", sa.String(32)),
    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
    sa.Column("manifest", sa.Text, nullable=False),  # JSON: the package manifest
    sa.Column("deployed_at", sa.DateTime(timezone=True)),  # first deployment; such a version is kept
    sa.Column("description", sa.Text),
    # its files run code when loaded (a pickle…); then loaded only if a person trusted it
    sa.Column("holds_code", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("trusted_by", sa.String(256)),
    sa.Column("trusted_at", sa.DateTime(timezone=True)),
    sa.Column("trusted_reason", sa.Text),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_files = sa.Table(
    "model_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_alias"),
)

# Every status change and alias move, forever: "which version was champion on 3 May?"
model_history = sa.Table(
    "model_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False, index=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # registered|trusted|approved|rejected|alias_set|alias_removed|rolled_back|deployed|deleted
    sa.Column("version", sa.Integer),
    sa.Column("alias", sa.String(64)),
    sa.Column("from_version", sa.Integer),
    sa.Column("actor", sa.String(256)),
    sa.Column("reason", sa.Text),
)

BLOB_REFERENCES.append((model_files, "digest"))

# Tables of other concerns live beside this file and register on the same ``metadata``.
from modelloop.store import (  # noqa: E402
    batch_tables,  # noqa: E402, F401  (batch: transform chunk records)
    monitoring_tables,  # noqa: E402, F401  (monitoring: baselines, alarms)
    pipeline_tables,  # noqa: E402, F401  (pipelines: runs and steps)
    serving_tables,  # noqa: E402, F401  (serving: endpoints, captures)
)
