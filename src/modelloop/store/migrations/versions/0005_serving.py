"""serving: endpoints, variants, rollouts and the capture index

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )
    op.create_table(
        "endpoint_rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_rollouts")),
    )
    with op.batch_alter_table("endpoint_rollouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_endpoint_rollouts_endpoint"), ["endpoint"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_endpoint_rollouts_status"), ["status"], unique=False)
    op.create_table(
        "capture_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=256), nullable=False),
        sa.Column("variant", sa.String(length=256), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_files")),
    )
    with op.batch_alter_table("capture_files", schema=None) as batch_op:
        batch_op.create_index("ix_capture_files_endpoint_hour", ["endpoint", "hour"], unique=False)
    op.create_table(
        "endpoint_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=256), nullable=False),
        sa.Column("variant", sa.String(length=256), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_stats")),
        sa.UniqueConstraint("server", "endpoint", "variant", name="uq_endpoint_stats_key"),
    )
    with op.batch_alter_table("endpoint_stats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_endpoint_stats_endpoint"), ["endpoint"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("endpoint_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_stats_endpoint"))
    op.drop_table("endpoint_stats")
    with op.batch_alter_table("capture_files", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_files_endpoint_hour")
    op.drop_table("capture_files")
    with op.batch_alter_table("endpoint_rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_rollouts_status"))
        batch_op.drop_index(batch_op.f("ix_endpoint_rollouts_endpoint"))
    op.drop_table("endpoint_rollouts")
    op.drop_table("endpoints")
