"""Feature set definitions (``modelloop features apply``): the checked spec, by name.

``version`` grows by one each time an apply changes the definition (its ``hash``), so a model
trained from a feature set can record which definition it was trained with.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

feature_sets = sa.Table(
    "feature_sets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("source", sa.String(256), nullable=False),  # the dataset the rows come from
    sa.Column("spec", sa.Text, nullable=False),  # JSON: the validated definition
    sa.Column("hash", sa.String(64), nullable=False),  # sha256 of the spec
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: (table, column) pairs that reference artifact blobs: none.
BLOB_COLUMNS: list = []
