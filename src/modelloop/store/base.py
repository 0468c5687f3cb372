"""The metadata store: every concern's interface together.

Domain code and services talk to these interfaces only (``store/interfaces/``, one per
concern). Today one implementation, :class:`~modelloop.store.sql.SqlStore`, serves both SQLite
(embedded default) and PostgreSQL (scale-out) through SQLAlchemy; a REST store for remote
workspaces would be another, registered by URL scheme (``store/backends.py``), in the spirit of
MLflow's ``store/``.
"""

from __future__ import annotations

from abc import abstractmethod

from modelloop.store.interfaces import (
    AccessStore,
    BatchStore,
    BlobRecordStore,
    DatasetStore,
    EventStore,
    FeatureSetStore,
    JobStore,
    LeaseStore,
    LoopStore,
    ModelRegistryStore,
    MonitoringStore,
    OnlineStore,
    PipelineStore,
    ServingStore,
    StreamStore,
    TriggerStore,
)


class MetadataStore(
    DatasetStore,
    BlobRecordStore,
    JobStore,
    ModelRegistryStore,
    PipelineStore,
    ServingStore,
    MonitoringStore,
    BatchStore,
    EventStore,
    LeaseStore,
    TriggerStore,
    LoopStore,
    OnlineStore,
    FeatureSetStore,
    AccessStore,
    StreamStore,
):
    """Records of everything in a workspace. Every method is one transaction."""

    url: str

    @property
    @abstractmethod
    def safe_url(self) -> str:
        """The URL to show a person (no password)."""

    def close(self) -> None:  # noqa: B027 - optional for implementations holding no resources
        """Release connections."""
