"""The SQL store: every aggregate's SQL on one engine, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from modelloop.store.base import MetadataStore
from modelloop.store.sql.access import SqlAccess
from modelloop.store.sql.batch import SqlBatch
from modelloop.store.sql.blobs import SqlBlobs
from modelloop.store.sql.datasets import SqlDatasets
from modelloop.store.sql.events import SqlEvents
from modelloop.store.sql.features import SqlFeatureSets
from modelloop.store.sql.jobs import SqlJobs
from modelloop.store.sql.leases import SqlLeases
from modelloop.store.sql.loops import SqlLoops
from modelloop.store.sql.monitoring import SqlMonitoring
from modelloop.store.sql.online import SqlOnline
from modelloop.store.sql.pipelines import SqlPipelines
from modelloop.store.sql.registry import SqlRegistry
from modelloop.store.sql.serving import SqlServing
from modelloop.store.sql.streams import SqlStreams
from modelloop.store.sql.triggers import SqlTriggers


class SqlStore(
    SqlDatasets,
    SqlBlobs,
    SqlJobs,
    SqlRegistry,
    SqlPipelines,
    SqlServing,
    SqlMonitoring,
    SqlBatch,
    SqlEvents,
    SqlLeases,
    SqlTriggers,
    SqlLoops,
    SqlOnline,
    SqlFeatureSets,
    SqlAccess,
    SqlStreams,
    MetadataStore,
):
    """The metadata store on SQLAlchemy: SQLite by default, PostgreSQL to scale out."""
