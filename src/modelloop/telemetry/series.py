"""Metric series: named, dimensioned points over time that alarms watch.

Endpoint servers write their interval figures here (:data:`modelloop.telemetry.metrics.SERIES`),
monitor runs their statistics, and users their own points (``modelloop metrics put``); alarms
(:mod:`modelloop.telemetry.alarms`) read them back. A series is a metric name plus exact
dimensions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelloop.store.interfaces import MetricSeriesStore

#: One point: (metric name, dimensions, time, value).
Point = tuple[str, dict, datetime, float]


class MetricSeries:
    """Writes and reads metric points in the metadata store."""

    def __init__(self, store: MetricSeriesStore):
        self.store = store

    def put(self, name: str, value: float, dimensions: dict | None = None,
            time: datetime | None = None) -> None:  # fmt: skip
        self.store.put_metric_points([(name, dimensions or {}, time or datetime.now(UTC), value)])

    def put_many(self, points: list[Point]) -> None:
        """Several points in one write."""
        self.store.put_metric_points(points)

    def points(self, name: str, dimensions: dict | None = None, *, since=None, until=None):
        """The points of a metric (of one series when ``dimensions`` are given) in a window;
        ``since``/``until`` are datetimes or times as ``modelloop`` parses them (``-1h``)."""
        from modelloop.data.refs import parse_time

        since = parse_time(since) if isinstance(since, str) else since
        until = parse_time(until) if isinstance(until, str) else until
        return self.store.metric_points(name, dimensions, since=since, until=until)

    def list(self, prefix: str = "") -> list[dict]:
        """The series whose metric name starts with ``prefix``."""
        return self.store.list_metric_series(prefix)
