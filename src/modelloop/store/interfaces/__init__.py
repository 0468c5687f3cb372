"""The metadata store's interfaces, one per concern.

Each is an abstract class naming every method its concern's services call, with what the method
promises (what is atomic, what is refused, in which order lists come back). A service can type
its constructor argument with the narrowest one it uses; :class:`~modelloop.store.MetadataStore`
is all of them together, and ``tests/store/conformance`` checks any implementation against them.
"""

from modelloop.store.interfaces.access import AccessStore
from modelloop.store.interfaces.batch import BatchStore
from modelloop.store.interfaces.blobs import BlobRecordStore
from modelloop.store.interfaces.datasets import DatasetStore
from modelloop.store.interfaces.events import EventStore
from modelloop.store.interfaces.features import FeatureSetStore
from modelloop.store.interfaces.jobs import JobStore
from modelloop.store.interfaces.leases import LeaseStore
from modelloop.store.interfaces.loops import LoopStore
from modelloop.store.interfaces.monitoring import (
    AlarmStore,
    LabelStore,
    MetricSeriesStore,
    MonitoringStore,
)
from modelloop.store.interfaces.online import OnlineStore
from modelloop.store.interfaces.pipelines import PipelineStore
from modelloop.store.interfaces.registry import ModelRegistryStore
from modelloop.store.interfaces.serving import ServingStore
from modelloop.store.interfaces.streams import StreamStore
from modelloop.store.interfaces.triggers import TriggerStore

__all__ = [
    "AccessStore",
    "AlarmStore",
    "BatchStore",
    "BlobRecordStore",
    "DatasetStore",
    "EventStore",
    "FeatureSetStore",
    "JobStore",
    "LabelStore",
    "LeaseStore",
    "LoopStore",
    "MetricSeriesStore",
    "ModelRegistryStore",
    "MonitoringStore",
    "OnlineStore",
    "PipelineStore",
    "ServingStore",
    "StreamStore",
    "TriggerStore",
]
