"""Data quality: baselines, constraint checks and drift statistics.

* :mod:`modelloop.quality.baseline` — :class:`Baseline`, per-column statistics of a dataset
  version (mergeable, JSON); :mod:`modelloop.quality.profiles` holds one column's statistics and
  :mod:`modelloop.quality.sagemaker` the SageMaker ``statistics.json``/``constraints.json`` layout.
* :mod:`modelloop.quality.checks` — :func:`check` data against a baseline with a
  :class:`CheckConfig` (:mod:`modelloop.quality.check_config`), giving violations
  (:mod:`modelloop.quality.constraints`), a drift table and a verdict.
* :mod:`modelloop.quality.drift` — the drift statistics (one class each, registered by name) and
  the documented default methods.
* :mod:`modelloop.quality.roles` — column roles (feature, target, identifier, time, ignored) and
  the identifier rule training's preprocessing shares.

Names are imported lazily so that ``import modelloop`` stays fast (NumPy, pandas and pyarrow load
on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Baseline", "CheckConfig", "CheckReport", "ColumnCheck", "check"]


def __getattr__(name: str) -> Any:
    match name:  # each module imported on first use of one of its names
        case "Baseline":
            from modelloop.quality import baseline as module
        case "CheckConfig" | "ColumnCheck":
            from modelloop.quality import check_config as module
        case "check" | "CheckReport":
            from modelloop.quality import checks as module
        case _:
            raise AttributeError(f"module 'modelloop.quality' has no attribute {name!r}")
    return getattr(module, name)
