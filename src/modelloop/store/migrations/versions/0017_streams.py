"""streams: the buffer of appended rows and the committed positions of stream sources

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_rows")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_stream_rows_dataset"), "stream_rows", ["dataset"])
    op.create_table(
        "stream_offsets",
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("position", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "source", name=op.f("pk_stream_offsets")),
    )


def downgrade() -> None:
    op.drop_table("stream_offsets")
    op.drop_index(op.f("ix_stream_rows_dataset"), table_name="stream_rows")
    op.drop_table("stream_rows")
