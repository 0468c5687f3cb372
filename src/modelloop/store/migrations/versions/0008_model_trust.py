"""registry: which versions hold code, and who trusted it

Revision ID: 0008
Revises: 0007

Versions of the flavors whose files are code (river, custom, mlflow_pyfunc) are marked; those a
training job of the workspace wrote are trusted as written by it, the others (imported or
registered from a folder before trust was recorded) stay untrusted until a person trusts them
with 'modelloop models trust'.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CODE_FLAVORS = ("river", "custom", "mlflow_pyfunc")


def upgrade() -> None:
    # plain ADD COLUMNs (SQLite has them): a batch copy of the table would have to drop the old
    # one, which the foreign keys of model_files (enforced by the store) refuse
    op.add_column("model_versions", sa.Column("holds_code", sa.Boolean(), nullable=False,
                                              server_default=sa.false()))
    op.add_column("model_versions", sa.Column("trusted_by", sa.String(length=256), nullable=True))
    op.add_column("model_versions", sa.Column("trusted_at", sa.DateTime(timezone=True),
                                              nullable=True))
    op.add_column("model_versions", sa.Column("trusted_reason", sa.Text(), nullable=True))
    versions = sa.table("model_versions", sa.column("flavor", sa.String), sa.column("job_id"),
                        sa.column("holds_code", sa.Boolean), sa.column("created_at"),
                        sa.column("trusted_by", sa.String), sa.column("trusted_at"),
                        sa.column("trusted_reason", sa.Text))
    code = versions.c.flavor.in_(_CODE_FLAVORS)
    op.execute(versions.update().where(code).values(holds_code=True))
    op.execute(versions.update().where(code, versions.c.job_id.isnot(None)).values(
        trusted_by="modelloop (migration 0008)", trusted_at=versions.c.created_at,
        trusted_reason="written by a training job of this workspace"))


def downgrade() -> None:
    for column in ("trusted_reason", "trusted_at", "trusted_by", "holds_code"):
        op.drop_column("model_versions", column)
