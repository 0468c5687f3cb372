"""serving: capture records indexed by inference id

Revision ID: 0009
Revises: 0008

Capture files written before this revision keep ``ids_indexed`` false; their ids are indexed the
first time a label lookup needs them (serving.capture reads those files once).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("capture_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ids_indexed", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "capture_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=256), nullable=False),
        sa.Column("inference_id", sa.String(length=160), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_ids")),
    )
    with op.batch_alter_table("capture_ids", schema=None) as batch_op:
        batch_op.create_index("ix_capture_ids_endpoint_inference_id",
                              ["endpoint", "inference_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("capture_ids", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_ids_endpoint_inference_id")
    op.drop_table("capture_ids")
    with op.batch_alter_table("capture_files", schema=None) as batch_op:
        batch_op.drop_column("ids_indexed")
