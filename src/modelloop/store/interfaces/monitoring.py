"""Records of monitoring: baselines, monitors and their runs, late labels, metric series, alarms.

Metric series, alarms and labels are separate interfaces because serving writes them too: a
service takes the narrowest one it uses. State changes that several processes may race on (a
scheduler slot, an event-log position, an alarm's state) are conditional updates: the process
whose update matched the old value wins; the others see ``False``/``None`` and skip the work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime


class MetricSeriesStore(ABC):
    """Numbers over time. One series is a name plus exact ``dimensions`` (str -> str)."""

    @abstractmethod
    def put_metric_points(self, points: list[tuple[str, dict, datetime, float]]) -> int:
        """Append points ``(name, dimensions, time, value)``; returns how many."""

    @abstractmethod
    def metric_points(
        self, name: str, dimensions: dict | None = None, *, since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict]:  # fmt: skip
        """Points (``time``, ``value``) of one series, oldest first; ``until`` is exclusive."""

    @abstractmethod
    def list_metric_series(self, prefix: str = "") -> list[dict]:
        """Each series whose name starts with ``prefix`` (literally: ``_`` and ``%`` are not
        wildcards): ``{"name", "dimensions", "points", "last"}``, by name then dimensions."""


class AlarmStore(ABC):
    """Conditions on metric series, with their state (OK | ALARM | INSUFFICIENT_DATA) and
    history."""

    @abstractmethod
    def add_alarm(self, **fields) -> int:
        """A new alarm (columns: ``name``, ``metric``, ``dims``, ``statistic``, ``comparison``,
        ``threshold``, ``period``, ``evaluation_periods``, ``datapoints_to_alarm``,
        ``missing_data``, ``actions``, ``state``…); :class:`~modelloop.errors.AlreadyExists` if
        the name is taken. Returns its id."""

    @abstractmethod
    def get_alarm(self, name: str) -> dict | None:
        """The alarm with its decoded ``actions``, or None."""

    @abstractmethod
    def list_alarms(self, metric: str | None = None) -> list[dict]:
        """Alarms (optionally on one metric), by name."""

    @abstractmethod
    def delete_alarm(self, name: str) -> bool:
        """Delete the alarm and its history; whether it existed."""

    @abstractmethod
    def transition_alarm(
        self, name: str, old_state: str, new_state: str, reason: str, data: dict,
        event: tuple[str, str, dict] | None = None,
    ) -> int | None:  # fmt: skip
        """Move an alarm from ``old_state`` to ``new_state``, with its history row and
        (optionally) an event ``(kind, subject, payload)``, in one transaction. Returns the event
        id (0 without an event), or None when the alarm was not in ``old_state`` (another process
        changed it first): then nothing is written."""

    @abstractmethod
    def add_alarm_history(self, name: str, kind: str, reason: str, data: dict) -> None:
        """Append a history row that is not a state change (e.g. an action's outcome)."""

    @abstractmethod
    def alarm_history(self, name: str, limit: int = 100) -> list[dict]:
        """The alarm's history rows (decoded ``data``), newest first."""


class LabelStore(ABC):
    """Ground truth that arrives after the prediction, keyed by the endpoint's inference id."""

    @abstractmethod
    def put_labels(self, endpoint: str, rows: list[tuple[str, str]]) -> int:
        """Insert or replace labels (inference id, label JSON); a later label wins. Returns how
        many rows were given."""

    @abstractmethod
    def get_labels(self, endpoint: str) -> dict[str, str]:
        """inference id -> label JSON, for every label of an endpoint."""


class MonitoringStore(MetricSeriesStore, AlarmStore, LabelStore):
    """Baselines, monitors and monitor runs, plus the series, alarms and labels they use."""

    # -- baselines ----------------------------------------------------------------------------
    @abstractmethod
    def add_baseline(self, **fields) -> int:
        """A new baseline (``name``, ``dataset``, ``dataset_version``, ``source``, ``digest``,
        ``n_rows``, ``schema``); :class:`~modelloop.errors.AlreadyExists` if the name is taken."""

    @abstractmethod
    def get_baseline(self, name: str) -> dict | None:
        """The baseline with its decoded ``schema``, or None."""

    @abstractmethod
    def find_baseline(self, dataset: str, version: int) -> dict | None:
        """The first baseline computed from exactly this dataset version, or None."""

    @abstractmethod
    def list_baselines(self) -> list[dict]:
        """Every baseline, in the order they were added."""

    @abstractmethod
    def delete_baseline(self, name: str) -> bool:
        """Whether a baseline of that name existed (and is now deleted)."""

    # -- monitors -----------------------------------------------------------------------------
    @abstractmethod
    def add_monitor(self, **fields) -> int:
        """A new monitor, enabled, at event-log position 0 unless given (``name``, ``baseline``,
        ``config``, ``dataset`` or ``endpoint``…); :class:`~modelloop.errors.AlreadyExists` if
        the name is taken."""

    @abstractmethod
    def get_monitor(self, name: str) -> dict | None:
        """The monitor with its decoded ``config``, or None."""

    @abstractmethod
    def list_monitors(self) -> list[dict]:
        """Every monitor, by name."""

    @abstractmethod
    def update_monitor(self, name: str, *, only_if: dict | None = None, **fields) -> bool:
        """Set fields; with ``only_if`` ({column: old value}), only while those still hold.
        Whether the monitor changed."""

    @abstractmethod
    def delete_monitor(self, name: str) -> bool:
        """Whether a monitor of that name existed (and is now deleted)."""

    # -- monitor runs -------------------------------------------------------------------------
    @abstractmethod
    def add_monitor_run(self, **fields) -> int:
        """Record a run (``monitor``, ``status``, ``summary``, ``n_rows``, ``n_violations``…);
        returns its id."""

    @abstractmethod
    def get_monitor_run(self, run_id: int) -> dict | None:
        """The run with its decoded ``summary``, or None."""

    @abstractmethod
    def list_monitor_runs(self, monitor: str | None = None, limit: int | None = None) -> list[dict]:
        """Runs (optionally of one monitor), newest first, at most ``limit``."""
