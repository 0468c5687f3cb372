"""triggers: triggers, their firings, watched files; what started a pipeline run

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("concurrency", sa.String(length=32), nullable=False),
        sa.Column("missed", sa.String(length=32), nullable=False),
        sa.Column("retry", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("after_event", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("name", name=op.f("uq_triggers_name")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_triggers_target"), ["target"], unique=False)
        batch_op.create_index(batch_op.f("ix_triggers_owner"), ["owner"], unique=False)
    op.create_table(
        "trigger_firings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=256), nullable=False),
        sa.Column("cause_key", sa.String(length=1024), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=300), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_firings")),
        sa.UniqueConstraint("trigger", "cause_key", name="uq_trigger_firings_trigger_cause"),
    )
    with op.batch_alter_table("trigger_firings", schema=None) as batch_op:
        batch_op.create_index("ix_trigger_firings_status_target", ["status", "target"],
                              unique=False)
    op.create_table(
        "watched_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=256), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("firing_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watched_files")),
        sa.UniqueConstraint("trigger", "path", name="uq_watched_files_trigger_path"),
    )
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("firing_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_pipeline_runs_firing_id"), ["firing_id"])


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_pipeline_runs_firing_id"), type_="unique")
        batch_op.drop_column("firing_id")
        batch_op.drop_column("started_by")
    op.drop_table("watched_files")
    with op.batch_alter_table("trigger_firings", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_firings_status_target")
    op.drop_table("trigger_firings")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triggers_owner"))
        batch_op.drop_index(batch_op.f("ix_triggers_target"))
    op.drop_table("triggers")
