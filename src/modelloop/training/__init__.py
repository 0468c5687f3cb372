"""Training: trainers, splits, preprocessing, evaluation with its gate and report, tuning, jobs.

The functions work on pandas DataFrames and plain values and report through a tracker, so the
same code runs in a notebook and inside a tracked job. The names below are imported lazily
(``import modelloop.training`` stays light).
"""

from __future__ import annotations

_EXPORTS = {
    "train": "modelloop.training.trainers",
    "TrainResult": "modelloop.training.trainers",
    "infer_task": "modelloop.training.trainers",
    "SplitSpec": "modelloop.training.splits",
    "evaluate": "modelloop.training.evaluation",
    "gate": "modelloop.training.gate",
    "GateFailed": "modelloop.training.gate",
    "report": "modelloop.training.report",
    "tune": "modelloop.training.tuning",
    "load_space": "modelloop.training.space",
    "MemoryTracker": "modelloop.training.tracking",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'modelloop.training' has no attribute {name!r}")
