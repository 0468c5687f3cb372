"""events: consumer groups and their pending deliveries

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_groups",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_groups")),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("consumer", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "event_id", name=op.f("pk_event_deliveries")),
    )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_event_deliveries_member", ["group_name", "consumer", "event_id"],
                              unique=False)
        batch_op.create_index("ix_event_deliveries_idle", ["group_name", "delivered_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_event_deliveries_idle")
        batch_op.drop_index("ix_event_deliveries_member")
    op.drop_table("event_deliveries")
    op.drop_table("event_groups")
