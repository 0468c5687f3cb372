"""Tables of stream-fed datasets: the durable buffer of rows appended over HTTP or the SDK, and
the position of each stream source whose rows are in committed versions."""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

# One row per append call (its rows as JSON Lines). A micro-batch's version deletes exactly the
# rows it took, in the transaction that records it: a row is in the buffer or in a version, never
# both and never neither.
stream_rows = sa.Table(
    "stream_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset", sa.String(128), nullable=False, index=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # ids never reused: a batch's entries name it in its lineage
)

# The last entry of a source (a Redis stream and group) that is in a version of ``dataset``;
# moved only by the commit of that version, on the condition that it is where the committer
# read it, so a crash between the commit and the source's acknowledgement never duplicates.
stream_offsets = sa.Table(
    "stream_offsets",
    metadata,
    sa.Column("dataset", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("position", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# How a dataset's consumer of a source was last run (``modelloop data stream``): its source URL
# as given and its options, so that ``modelloop up`` can run it again. Forgotten with the dataset.
stream_consumers = sa.Table(
    "stream_consumers",
    metadata,
    sa.Column("dataset", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),  # JSON
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
