"""Tables of the model registry: models, versions, their files, aliases and history."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

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
    sa.Column(
        "deployed_at", sa.DateTime(timezone=True)
    ),  # first deployment; such a version is kept
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
    sa.Column(
        "version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False, index=True
    ),
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
    sa.Column(
        "action", sa.String(32), nullable=False
    ),  # registered|trusted|approved|rejected|alias_set|alias_removed|rolled_back|deployed|deleted
    sa.Column("version", sa.Integer),
    sa.Column("alias", sa.String(64)),
    sa.Column("from_version", sa.Integer),
    sa.Column("actor", sa.String(256)),
    sa.Column("reason", sa.Text),
)


#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(model_files, "digest")]
