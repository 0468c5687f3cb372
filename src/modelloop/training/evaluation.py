"""Metrics of a model on labelled rows: classification and regression, with their directions.

:func:`evaluate` scores a fitted model on a frame and returns an :class:`Evaluation`: flat
scalar ``metrics`` (what a job records and a gate compares), the confusion matrix and
calibration bins, and the predictions kept for plotting (:mod:`modelloop.training.report`).
All metrics are scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelloop.common.jsonable import to_jsonable
from modelloop.common.predictions import labels_and_proba
from modelloop.common.threads import small_work_threads
from modelloop.errors import InvalidInput

#: Metrics where lower is better; every other metric is better when greater.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "mse", "rmse", "mape"})
CLASSIFICATION_METRICS = (
    "accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc",
    "log_loss", "brier", "ece",
)  # fmt: skip
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "mape")
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def direction(metric: str) -> str:
    """``"minimize"`` or ``"maximize"`` (Optuna's words) for a metric name."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def check_metric(metric: str, task: str) -> str:
    known = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
    if metric not in known:
        raise InvalidInput(
            f"metric {metric!r} is not computed for {task} tasks",
            hint=f"use one of {', '.join(known)}",
        )
    return metric


@dataclass
class Evaluation:
    task: str
    n_rows: int
    metrics: dict[str, float]
    labels: list | None = None  # class labels, in the order of the confusion matrix
    confusion_matrix: list[list[int]] | None = None
    calibration: dict | None = None  # {"confidence": [...], "observed": [...], "count": [...]}
    # predictions kept for plots; not part of to_dict()
    y_true: Any = field(default=None, repr=False)
    y_pred: Any = field(default=None, repr=False)
    proba: Any = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "metrics": self.metrics,
            "labels": self.labels,
            "confusion_matrix": self.confusion_matrix,
            "calibration": self.calibration,
        }


def evaluate(model, frame, target: str, task: str | None = None) -> Evaluation:
    """Score ``model`` on ``frame`` (features + the ``target`` column)."""
    from modelloop.training.trainers import infer_task

    if target not in frame.columns:
        raise InvalidInput(
            f"target column {target!r} is not in the data",
            hint=f"the columns are: {', '.join(map(str, frame.columns))}",
        )
    y = frame[target]
    if y.isna().any():
        raise InvalidInput(
            f"target column {target!r} has {int(y.isna().sum())} missing values",
            hint="evaluate on labelled rows only",
        )
    task = task or infer_task(y)
    X = frame.drop(columns=[target])
    with small_work_threads(len(X)):
        if task == "regression":
            return _regression(y.to_numpy(dtype="float64"), model.predict(X))
        y_pred, proba = labels_and_proba(model, X)
    classes = getattr(model, "classes_", None)
    return classification_metrics(y.to_numpy(), y_pred, proba, classes, task)


#: Classification metrics computed from probabilities (the others from predicted labels).
PROBA_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss", "brier", "ece"})


def score(model, frame, target: str, task: str, metric: str) -> float | None:
    """One metric of ``model`` on ``frame``, predicting only what it needs (for tuning trials).

    Gives the same number as ``evaluate(...).metrics[metric]``, or None when the model cannot
    give it (a ranking metric from a model without ``predict_proba``).
    """
    X, y = frame.drop(columns=[target]), frame[target]
    with small_work_threads(len(X)):
        return _score(model, X, y, task, metric)


def _score(model, X, y, task: str, metric: str) -> float | None:
    import numpy as np

    if task == "regression":
        return _regression(y.to_numpy(dtype="float64"), model.predict(X)).metrics[metric]
    if metric in PROBA_METRICS:
        classes = getattr(model, "classes_", None)
        if not hasattr(model, "predict_proba") or classes is None:
            return None
        proba = model.predict_proba(X)
        if task == "binary" and metric in ("roc_auc", "pr_auc") and y.nunique() == 2:
            from sklearn import metrics as m

            how = m.roc_auc_score if metric == "roc_auc" else m.average_precision_score
            return float(how(y.to_numpy() == classes[1], proba[:, 1]))
        y_pred = np.asarray(classes)[np.argmax(proba, axis=1)]  # unused by ranking metrics
        return classification_metrics(y.to_numpy(), y_pred, proba, classes, task).metrics.get(
            metric
        )
    return classification_metrics(y.to_numpy(), model.predict(X), None, None, task).metrics[metric]


def _regression(y, y_pred) -> Evaluation:
    import numpy as np
    from sklearn import metrics as m

    y_pred = np.asarray(y_pred, dtype="float64").ravel()
    mse = m.mean_squared_error(y, y_pred)
    values = {
        "mae": m.mean_absolute_error(y, y_pred),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": m.r2_score(y, y_pred) if len(y) > 1 else float("nan"),
        "mape": m.mean_absolute_percentage_error(y, y_pred),
    }
    return Evaluation(
        "regression", len(y), {k: float(v) for k, v in values.items()}, y_true=y, y_pred=y_pred
    )


def classification_metrics(y, y_pred, proba, classes, task: str) -> Evaluation:
    """Metrics from labels (and probabilities with their ``classes`` order, when there are some)."""
    import numpy as np
    from sklearn import metrics as m
    from sklearn.preprocessing import label_binarize

    y_pred = np.asarray(y_pred)
    labels = list(classes) if classes is not None else sorted(set(y) | set(y_pred.tolist()))
    binary = task == "binary" and len(labels) == 2
    average = "binary" if binary else "macro"
    pos = {"pos_label": labels[1]} if binary else {}
    values = {
        "accuracy": m.accuracy_score(y, y_pred),
        "balanced_accuracy": m.balanced_accuracy_score(y, y_pred),
        "precision": m.precision_score(y, y_pred, average=average, zero_division=0, **pos),
        "recall": m.recall_score(y, y_pred, average=average, zero_division=0, **pos),
        "f1": m.f1_score(y, y_pred, average=average, zero_division=0, **pos),
    }
    calibration = None
    if proba is not None and classes is not None:
        proba = np.asarray(proba, dtype="float64")
        proba = proba / proba.sum(axis=1, keepdims=True)  # forests' rows can miss 1 by 1e-16
        present = len(set(y.tolist())) > 1
        if binary:
            hit = y == labels[1]
            if present:
                values["roc_auc"] = m.roc_auc_score(hit, proba[:, 1])
                values["pr_auc"] = m.average_precision_score(hit, proba[:, 1])
            values["brier"] = m.brier_score_loss(hit, proba[:, 1])
            confidence, correct = proba[:, 1], hit
        else:
            onehot = label_binarize(y, classes=labels)
            if present and onehot.shape[1] == proba.shape[1]:
                seen = onehot.sum(axis=0) > 0  # AUC of a class absent from y is undefined
                values["roc_auc"] = m.roc_auc_score(
                    onehot[:, seen], proba[:, seen], average="macro"
                )
                values["pr_auc"] = m.average_precision_score(
                    onehot[:, seen], proba[:, seen], average="macro"
                )
            values["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
            # top-label calibration: how often the most probable class is right
            confidence = proba.max(axis=1)
            correct = np.asarray(labels, dtype=object)[proba.argmax(axis=1)] == y
        values["log_loss"] = m.log_loss(y, proba, labels=labels)
        calibration = _calibration(confidence, correct.astype("float64"))
        values["ece"] = calibration.pop("ece")
    return Evaluation(
        task,
        len(y),
        {k: float(v) for k, v in values.items()},
        labels=to_jsonable(list(labels), nonfinite="keep"),
        confusion_matrix=m.confusion_matrix(y, y_pred, labels=labels).tolist(),
        calibration=calibration,
        y_true=y,
        y_pred=y_pred,
        proba=proba,
    )


def _calibration(confidence, observed, bins: int = 10) -> dict:
    """Reliability bins over [0, 1] and the expected calibration error (their weighted gap).

    scikit-learn's ``calibration_curve`` drops empty bins and gives no counts, which the ECE
    needs, so the (three-line) binning is done here.
    """
    import numpy as np

    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    conf = np.bincount(which, weights=confidence, minlength=bins)
    obs = np.bincount(which, weights=observed, minlength=bins)
    keep = count > 0
    mean_conf, mean_obs = conf[keep] / count[keep], obs[keep] / count[keep]
    ece = float(np.sum(count[keep] * np.abs(mean_conf - mean_obs)) / max(1, count.sum()))
    return {
        "confidence": mean_conf.tolist(),
        "observed": mean_obs.tolist(),
        "count": count[keep].tolist(),
        "ece": ece,
    }

