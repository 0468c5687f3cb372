"""How training code reports what it does, without knowing who is listening.

Trainers, tuning and evaluation take a ``tracker`` argument and report params, metrics (final
scalars, or points of a series when a ``step`` is given), text and info through it. The job
recorder of :mod:`modelloop.training.jobs` fits this protocol, so a tracked job passes its
recorder; code run directly (a notebook, a test) passes nothing and reports go nowhere, or
passes a :class:`MemoryTracker` to look at them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tracker(Protocol):
    def log_param(self, key: str, value: Any) -> None: ...

    def log_params(self, params: dict) -> None: ...

    def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...

    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...

    def log_text(self, text: str) -> None: ...

    def set_info(self, key: str, value: Any) -> None: ...


class NullTracker:
    """Reports go nowhere (the default when nobody tracks)."""

    def log_param(self, key, value):
        pass

    def log_params(self, params):
        pass

    def log_metric(self, key, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_text(self, text):
        pass

    def set_info(self, key, value):
        pass


@dataclass
class MemoryTracker:
    """Keeps every report in memory: for tests, notebooks and the tuning leaderboard."""

    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    series: list = field(default_factory=list)  # (key, value, step)
    texts: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def log_param(self, key, value):
        self.params[key] = value

    def log_params(self, params):
        self.params.update(params)

    def log_metric(self, key, value, step=None):
        if step is None:
            self.metrics[key] = float(value)
        else:
            self.series.append((key, float(value), int(step)))

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.log_metric(key, value, step)

    def log_text(self, text):
        self.texts.append(text)

    def set_info(self, key, value):
        self.info[key] = value


def as_tracker(tracker: Tracker | None) -> Tracker:
    return NullTracker() if tracker is None else tracker


class TrialTrackers(Protocol):
    """Starts and ends the tracker of each tuning trial (each trial is a child job).

    ``state`` is Optuna's word for how the trial ended: ``complete``, ``pruned`` or ``failed``.
    """

    def start(self, number: int, params: dict) -> Tracker: ...

    def end(self, tracker: Tracker, state: str, error: str | None = None) -> None: ...


class MemoryTrialTrackers:
    """Keeps one :class:`MemoryTracker` per trial, with the state it ended in."""

    def __init__(self):
        self.trials: dict[int, MemoryTracker] = {}
        self.states: dict[int, tuple[str, str | None]] = {}

    def start(self, number, params):
        tracker = MemoryTracker()
        tracker.log_params(params)
        tracker.set_info("trial", number)
        self.trials[number] = tracker
        return tracker

    def end(self, tracker, state, error=None):
        self.states[tracker.info["trial"]] = (state, error)
