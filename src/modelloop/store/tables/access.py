"""Access: API tokens (who may call the control plane and with which role) and the audit log.

``api_tokens`` keeps only an argon2 hash of each token's secret; the token itself is shown once.
A name is unique among tokens not revoked (a partial unique index), so ``ci`` can be revoked and
made again. ``audit_log`` is append-only: the migration adds a trigger on SQLite and PostgreSQL
that refuses UPDATE and DELETE, and no store method changes a row.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | operator | admin
    sa.Column("hash", sa.Text, nullable=False),  # argon2id of the secret part
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # None: never
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    # partial: WHERE revoked_at IS NULL (migration 0016 says so per dialect; dialect keywords
    # here would import SQLAlchemy's PostgreSQL dialect into every process, SQLite ones too)
    sa.Index("uq_api_tokens_active_name", "name", unique=True,
             info={"where": "revoked_at IS NULL"}),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),  # token name or OS user
    sa.Column("actor_kind", sa.String(16), nullable=False),  # token | user
    sa.Column("action", sa.String(128), nullable=False),  # models.approve, cli: token create
    sa.Column("subject", sa.Text),  # what it acted on, when one thing (loans@3)
    sa.Column("arguments", sa.Text, nullable=False),  # JSON, secrets redacted
    sa.Column("outcome", sa.Text, nullable=False),  # ok | error: ...
    sa.Column("source", sa.String(16), nullable=False),  # api | cli | sdk
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor", "at"),
)

#: (table, column) pairs that reference artifact blobs: none.
BLOB_COLUMNS: list = []
