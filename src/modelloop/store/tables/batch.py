"""Tables of batch transforms: one row per finished chunk of a transform.

A transform is identified by its ``transform_key`` (a hash of the model version, the input files
as found, the output and the options), not by the job that runs it: a rerun of the same command,
or ``transform resume``, is a new job with the same key and finds the chunks already done. A
chunk's scored rows and failed rows are blobs in the artifact store; the row is written after
them, so a recorded chunk is always complete.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelloop.store.tables.base import metadata

transform_chunks = sa.Table(
    "transform_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transform_key", sa.String(64), nullable=False),
    sa.Column("chunk", sa.Integer, nullable=False),  # position in the transform's chunk plan
    sa.Column("job_id", sa.Integer, nullable=False, index=True),  # the job that scored it
    sa.Column("rows", sa.BigInteger, nullable=False),  # rows written to the output
    sa.Column("error_rows", sa.BigInteger, nullable=False),  # rows sent to the error file
    sa.Column("input_bytes", sa.BigInteger, nullable=False),  # for progress and ETA
    sa.Column("part_digest", sa.String(64), nullable=False),  # the chunk's output rows
    sa.Column("errors_digest", sa.String(64)),  # its failed rows (JSON Lines), if any
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("transform_key", "chunk", name="uq_transform_chunks_key_chunk"),
)

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_COLUMNS = [(transform_chunks, "part_digest"), (transform_chunks, "errors_digest")]
