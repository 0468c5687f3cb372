"""Training: trainers, splits, preprocessing, evaluation with its gate and report, tuning, jobs.

The functions work on pandas DataFrames and plain values and report through a tracker, so the
same code runs in a notebook and inside a tracked job. The names below are imported lazily
(``import modelloop.training`` stays light).
"""

from __future__ import annotations

__all__ = [
    "GateFailed", "MemoryTracker", "SplitSpec", "TrainResult", "evaluate", "gate", "infer_task",
    "load_space", "report", "train", "tune",
]  # fmt: skip


def __getattr__(name: str):
    # each module is imported on first use of one of its names
    if name in ("train", "TrainResult", "infer_task"):
        from modelloop.training import trainers as module
    elif name == "SplitSpec":
        from modelloop.training import splits as module
    elif name == "evaluate":
        from modelloop.training import evaluation as module
    elif name in ("gate", "GateFailed"):  # the function is named as its module: import from it
        from modelloop.training.gate import GateFailed, gate

        return {"gate": gate, "GateFailed": GateFailed}[name]
    elif name == "report":
        from modelloop.training.report import report

        return report
    elif name == "tune":
        from modelloop.training import tuning as module
    elif name == "load_space":
        from modelloop.training import space as module
    elif name == "MemoryTracker":
        from modelloop.training import tracking as module
    else:
        raise AttributeError(f"module 'modelloop.training' has no attribute {name!r}")
    return getattr(module, name)
