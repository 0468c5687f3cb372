"""Applied loops: the spec ``modelloop loop apply`` stored, and what apply made for it.

``resources`` records what belongs to the loop (its endpoint, unless it existed before the first
apply; its monitors and alarms), so a later apply deletes what the spec no longer declares and
``loop delete`` removes exactly that. Triggers carry their owner themselves (``loop:NAME``).
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

loops = sa.Table(
    "loops",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("spec", sa.Text, nullable=False),  # JSON: the validated spec, dumped
    sa.Column("base_dir", sa.Text, nullable=False),  # relative ingest paths start here
    sa.Column("hash", sa.String(64), nullable=False),  # sha256 of spec + base_dir
    sa.Column("resources", sa.Text, nullable=False),  # JSON: what apply made for the loop
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

#: (table, column) pairs that reference artifact blobs: none.
BLOB_COLUMNS: list = []
