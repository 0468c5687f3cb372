"""The metadata tables (SQLAlchemy Core), one module per concern, all on one ``metadata``.

Changing a table needs a new Alembic migration (``store/migrations/versions/``). Importing this
package registers every table, which is what the migrations' autogenerate compares against.
"""

from modelloop.store.tables import (
    access,
    batch,
    blobs,
    datasets,
    events,
    features,
    jobs,
    leases,
    loops,
    monitoring,
    online,
    pipelines,
    registry,
    serving,
    streams,
    triggers,
)
from modelloop.store.tables.base import metadata

#: (table, column) pairs that reference artifact blobs; garbage collection keeps these.
BLOB_REFERENCES = [
    *datasets.BLOB_COLUMNS,
    *jobs.BLOB_COLUMNS,
    *registry.BLOB_COLUMNS,
    *pipelines.BLOB_COLUMNS,
    *serving.BLOB_COLUMNS,
    *monitoring.BLOB_COLUMNS,
    *batch.BLOB_COLUMNS,
    *loops.BLOB_COLUMNS,
]

__all__ = [
    "BLOB_REFERENCES", "access", "blobs", "events", "features", "leases", "metadata", "online",
    "streams", "triggers",
]
