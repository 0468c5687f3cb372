"""online: labelled events stored a block per append (online_event_blocks replaces online_events)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # online_events lived for minutes on development branches only: nothing to carry over.
    op.drop_table("online_events")
    op.create_table(
        "online_event_blocks",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "first_seq", name=op.f("pk_online_event_blocks")),
    )


def downgrade() -> None:
    op.drop_table("online_event_blocks")
    op.create_table(
        "online_events",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("inference_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("endpoint", "seq", name=op.f("pk_online_events")),
    )
