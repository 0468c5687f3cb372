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

_EXPORTS = {
    "Baseline": "modelloop.quality.baseline",
    "check": "modelloop.quality.checks",
    "CheckConfig": "modelloop.quality.check_config",
    "ColumnCheck": "modelloop.quality.check_config",
    "CheckReport": "modelloop.quality.checks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'modelloop.quality' has no attribute {name!r}")
