"""online: labelled events per endpoint (a block per append) and online variants' published models

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_streams",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_online_streams")),
    )
    op.create_table(  # labelled events, a block (one JSON document) per append
        "online_event_blocks",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "first_seq", name=op.f("pk_online_event_blocks")),
    )
    op.create_table(
        "online_models",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("variant", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=True),
        sa.Column("info", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "variant", name=op.f("pk_online_models")),
    )


def downgrade() -> None:
    op.drop_table("online_models")
    op.drop_table("online_event_blocks")
    op.drop_table("online_streams")
