"""Model quality from late labels: ground truth joined to captured predictions by inference id.

Metrics are the training issue's (:mod:`modelloop.training.evaluation`), computed per time window
and over the whole run, and compared with the metrics the model version was registered with.
River's streaming concept-drift detectors (ADWIN, Page-Hinkley, DDM) can watch the error stream
(0/1 mistakes for classifiers, absolute errors for regressors) in inference-time order.
"""

from __future__ import annotations

import json

from modelloop.errors import InvalidInput

DETECTORS = ("adwin", "pagehinkley", "ddm")


def join_labels(frame, labels: dict[str, str]):
    """The captured rows that have a label, with a ``label`` column."""
    if frame.empty or not labels:
        return frame.iloc[0:0].assign(label=[])
    found = frame["inference_id"].astype(str).map(labels)
    out = frame[found.notna()].copy()
    out["label"] = [json.loads(v) for v in found[found.notna()]]
    return out


def infer_task(labelled) -> str:
    import pandas as pd

    y = labelled["label"]
    if pd.api.types.is_float_dtype(y) and y.nunique() > 10:
        return "regression"
    return "binary" if y.nunique() <= 2 else "multiclass"


def metrics_of(labelled, task: str) -> dict[str, float]:
    """The evaluation metrics of labelled predictions (probabilities used when captured)."""
    import numpy as np

    from modelloop.training import evaluation

    y = labelled["label"].to_numpy()
    y_pred = labelled["prediction"].to_numpy()
    if task == "regression":
        # the evaluation module's regression metrics (its name is private; same numbers)
        return evaluation._regression(y.astype("float64"), y_pred).metrics
    proba_cols = [c for c in labelled.columns if str(c).startswith("proba_")]
    proba = classes = None
    if proba_cols and not labelled[proba_cols].isna().any().any():
        classes = [_class(c.removeprefix("proba_"), y) for c in proba_cols]
        proba = labelled[proba_cols].to_numpy(dtype="float64")
    y_pred = np.asarray([_class(str(v), y) if isinstance(v, str) else v for v in y_pred])
    ev = evaluation.classification_metrics(y, y_pred, proba, classes, task)
    return {k: float(v) for k, v in ev.metrics.items()}


def _class(text: str, y):
    """A class name read back from a column name, typed like the labels (1 vs "1")."""
    sample = y[0] if len(y) else None
    if isinstance(sample, bool | int) or hasattr(sample, "dtype") and sample.dtype.kind in "iub":
        try:
            return type(sample)(int(text))
        except ValueError:
            return text
    if isinstance(sample, float):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def error_stream(labelled, task: str):
    import numpy as np

    if task == "regression":
        return np.abs(labelled["label"].to_numpy("float64") - labelled["prediction"].to_numpy("float64"))
    return (labelled["label"].astype(str).to_numpy() != labelled["prediction"].astype(str).to_numpy()).astype(float)


def run_detectors(labelled, task: str, names: list[str]) -> dict[str, list[dict]]:
    """Where each River detector flags drift in the error stream (index, inference time)."""
    from river import drift

    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise InvalidInput(
            f"unknown drift detector(s) {', '.join(unknown)}", hint=f"use {', '.join(DETECTORS)}"
        )
    errors = error_stream(labelled, task)
    times = labelled["inference_time"].astype(str).tolist()
    out: dict[str, list[dict]] = {}
    for name in names:
        if name == "ddm" and task == "regression":
            raise InvalidInput("DDM watches 0/1 errors; use adwin or pagehinkley for regression")
        det = {"adwin": drift.ADWIN, "pagehinkley": drift.PageHinkley,
               "ddm": drift.binary.DDM}[name]()  # fmt: skip
        hits = []
        for i, e in enumerate(errors):
            det.update(bool(e) if name == "ddm" else float(e))
            if det.drift_detected:
                hits.append({"index": i, "time": times[i]})
        out[name] = hits
    return out


def quality_report(
    labelled,
    *,
    task: str | None = None,
    period: int = 3600,
    reference: dict[str, float] | None = None,
    detectors: list[str] = (),
) -> dict:
    """Metrics overall and per ``period`` seconds, the reference (training) metrics and deltas,
    and the detectors' drift points. ``labelled`` is :func:`join_labels`'s output."""
    import pandas as pd

    if labelled.empty:
        return {"n_labelled": 0, "task": task, "metrics": {}, "windows": [], "reference": reference}
    labelled = labelled.sort_values("inference_time", kind="stable")
    task = task or infer_task(labelled)
    overall = metrics_of(labelled, task)
    windows = []
    keys = labelled["inference_time"].dt.floor(pd.Timedelta(seconds=period))
    for start, part in labelled.groupby(keys, sort=True):
        windows.append({"start": start.isoformat(), "n": len(part), "metrics": metrics_of(part, task)})
    delta = {k: overall[k] - v for k, v in (reference or {}).items() if k in overall}
    return {
        "n_labelled": len(labelled),
        "task": task,
        "metrics": overall,
        "reference": reference or {},
        "delta": delta,
        "windows": windows,
        "detectors": run_detectors(labelled, task, list(detectors)) if detectors else {},
    }
