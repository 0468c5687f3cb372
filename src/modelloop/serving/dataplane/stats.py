"""A server's per-variant counters and latencies: kept in memory per request, flushed to the
store about every second (``modelloop endpoint stats`` sums them over every server process) and
written as metric series every ``metrics_seconds`` (alarms watch error rates and latency)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelloop.telemetry.metrics import VariantStats, interval_series

if TYPE_CHECKING:
    from modelloop.store.base import MetadataStore

#: Where metric points go: a list of (name, dimensions, time, value).
MetricSink = Callable[[list[tuple[str, dict, datetime, float]]], None]


class ServerStats:
    """The statistics of one server process (``server_id``)."""

    def __init__(self, store: MetadataStore, put_metrics: MetricSink, server_id: str):
        self.store = store
        self.put_metrics = put_metrics
        self.server_id = server_id
        self.variants: dict[tuple[str, str], VariantStats] = {}
        self._series_sent: dict[tuple[str, str], dict] = {}  # snapshot at the last series write

    def of(self, endpoint: str, variant: str) -> VariantStats:
        s = self.variants.get((endpoint, variant))
        if s is None:
            s = self.variants[(endpoint, variant)] = VariantStats()
        return s

    def snapshots(self) -> list[tuple[str, str, dict]]:
        """(endpoint, variant, snapshot), sorted."""
        return [(ep, var, s.snapshot()) for (ep, var), s in sorted(self.variants.items())]

    def flush(self) -> None:
        """Write the snapshots that changed since the last flush to the store."""
        rows = []
        for (ep, var), s in list(self.variants.items()):
            if s.dirty:
                s.dirty = False
                rows.append((ep, var, s.snapshot()))
        if rows:
            self.store.put_endpoint_stats(self.server_id, rows)

    def write_series(self) -> None:
        """Write each variant's figures since the last write as metric series."""
        now = datetime.now(UTC)
        points = []
        for key, s in list(self.variants.items()):
            snap = s.snapshot()
            values = interval_series(self._series_sent.get(key), snap)
            self._series_sent[key] = snap
            dims = {"endpoint": key[0], "variant": key[1]}
            points += [(name, dims, now, value) for name, value in values.items()]
        if points:
            self.put_metrics(points)
