"""online: the lease term of the learner that wrote an online variant's checkpoint (fencing)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("online_models", sa.Column("term", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("online_models") as batch:
        batch.drop_column("term")
