"""batch: transform chunk records

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transform_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transform_key", sa.String(length=64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("error_rows", sa.BigInteger(), nullable=False),
        sa.Column("input_bytes", sa.BigInteger(), nullable=False),
        sa.Column("part_digest", sa.String(length=64), nullable=False),
        sa.Column("errors_digest", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transform_chunks")),
        sa.UniqueConstraint("transform_key", "chunk", name="uq_transform_chunks_key_chunk"),
    )
    with op.batch_alter_table("transform_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transform_chunks_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transform_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transform_chunks_job_id"))
    op.drop_table("transform_chunks")
