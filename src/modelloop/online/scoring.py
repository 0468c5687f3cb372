"""How the learner scores events: its metric, what it asks the model for, its window metric.

The learner scores each event twice: into the cumulative prequential metric (what River's
``progressive_val_score`` computes) and into the current window's (a metric series point and the
guard's input every ``window`` events), the window without a second update per event where it
can. For :class:`river.metrics.Accuracy` the window's state is
the cumulative confusion matrix's growth since the window began, so the learner marks the
cumulative matrix where a run of events starts and adds the growth to the window's matrix where
it ends (:func:`mark`, :func:`add_since`) instead of updating the window per event (measured:
0.8 µs an event, a fifth of modelloop's learning overhead over River). Every cell is a sum of
unit weights, an integer held exactly in a float, so the window's matrix holds the very numbers
the per-event updates would have made. Other metrics (weighted sums, means of floats) are
updated per event as before: their sums would not subtract exactly.
"""

from __future__ import annotations

from collections.abc import Callable

from modelloop.errors import InvalidInput
from modelloop.online.models import SklearnOnline
from modelloop.online.publish import dumps, loads


def make_metric(name: str):
    """A River metric by its class name (``Accuracy``, ``LogLoss``, ``MAE``, ``ROCAUC``…)."""
    from river import metrics

    cls = getattr(metrics, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(cls, type) or not issubclass(cls, metrics.base.Metric):
        raise InvalidInput(f"{name!r} is not a River metric", hint="e.g. Accuracy, LogLoss, MAE")
    return cls()


def is_classifier(model) -> bool:
    from river import base

    if isinstance(model, SklearnOnline):
        from sklearn.base import is_classifier as sk

        return sk(model.estimator)
    return isinstance(model, base.Classifier)


def predictor(model, metric) -> Callable:
    """What River's progressive validation calls: probabilities for a classifier scored by a
    metric that needs them, the prediction otherwise."""
    if is_classifier(model) and not metric.requires_labels:
        return type(model).predict_proba_one
    return type(model).predict_one


def by_difference(metric) -> bool:
    """Whether ``metric``'s window can be kept as the cumulative one's growth."""
    from river import metrics

    return type(metric) is metrics.Accuracy


def mark(cm) -> tuple:
    """What :func:`add_since` subtracts: a copy of the confusion matrix's sums."""
    return (cm.n_samples, cm.total_weight, cm._total_true_positives, dict(cm.sum_row),
            dict(cm.sum_col), {y: dict(row) for y, row in cm.data.items()})  # fmt: skip


def add_since(window, cm, since: tuple) -> None:
    """Add to ``window`` (a confusion matrix) what ``cm`` gained after ``since`` was marked."""
    n, weight, tp, sum_row, sum_col, data = since
    if cm.n_samples == n:
        return  # nothing scored: the window is left exactly as the per-event updates leave it
    window.n_samples += cm.n_samples - n
    window.total_weight += cm.total_weight - weight
    window._total_true_positives += cm._total_true_positives - tp
    for mine, theirs, before in ((window.sum_row, cm.sum_row, sum_row),
                                 (window.sum_col, cm.sum_col, sum_col)):  # fmt: skip
        for key, value in theirs.items():
            if value != before.get(key, 0.0):
                mine[key] += value - before.get(key, 0.0)
    for y, row in cm.data.items():
        old = data.get(y, {})
        for y_pred, value in row.items():
            if value != old.get(y_pred, 0.0):
                window.data[y][y_pred] += value - old.get(y_pred, 0.0)


class Blank:
    """Fresh metrics like ``metric`` (unfitted): a copy of a pickled clone, several times
    cheaper than River's ``clone`` (which inspects the constructor's parameters), made twice
    per window."""

    def __init__(self, metric):
        self._bytes = dumps(metric.clone())

    def __call__(self):
        return loads(self._bytes)
