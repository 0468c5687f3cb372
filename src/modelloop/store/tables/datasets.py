"""Tables of datasets: versions, the parts they add, and the source files they came from."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

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

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(dataset_parts, "digest")]
