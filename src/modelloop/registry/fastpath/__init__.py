"""The fast path: a fitted preprocessing pipeline served as a NumPy plan, without pandas.

A model that ``modelloop train`` fits is a scikit-learn ``Pipeline`` (column casting, a
``ColumnTransformer`` of imputers, scalers and encoders, the estimator). Called per request it
costs ~3 ms of per-call pandas and transformer overhead for ~0.1 ms of model. When the package is
written, :func:`compile_into` compiles the fitted steps into a *plan*: data (``fastpath.json``:
fill values, means and scales, categories, and for linear models the coefficients), listed in the
manifest and so inside the package hash, loaded without unpickling anything. The plan is checked
against the pipeline on probe rows (the given training sample, and synthetic rows with missing
values and unseen categories): every label identical and every probability or value within
:data:`RTOL` (relative). If anything differs, or the pipeline holds a step the plan does not
know, no plan is written and the reason is recorded (``flavor_info["fast_path"]``), so the
version is served by the plain path, as before. Serving and batch transform use the plan of a
version that has one (:attr:`PackagedModel.plan`).

Hand-written rather than ONNX (skl2onnx + onnxruntime): the plan needs no extra dependency and
computes the pipeline's own float64 operations in the same order, so it agrees to ~1e-15 where
ONNX runtimes compute in float32 by default.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import IntegrityError
from modelloop.registry.fastpath.compile import Unsupported, compile_plan
from modelloop.registry.fastpath.plan import Plan

log = logging.getLogger(__name__)

FILE = "fastpath.json"
FORMAT = 1
#: Probabilities and regression values must agree to this relative tolerance (labels exactly).
RTOL = 1e-9
PROBE_ROWS = 256

__all__ = ["FILE", "Plan", "Unsupported", "compile_into", "describe", "load_plan"]


def compile_into(model: Any, folder: Path, signature, probe=None) -> dict:
    """Compile ``model``'s plan, check it, write it to ``folder``; return the manifest entry
    (``{"path": "plan", …}`` or ``{"path": "plain", "reason": …}``). Never raises: a model the
    plan cannot serve keeps the plain path."""
    try:
        data = compile_plan(model, signature)
        estimator = model.steps[-1][1]
        plan = Plan(data, signature.names, estimator)
        checked = check(model, plan, data, signature, probe)
    except Unsupported as exc:
        return {"path": "plain", "reason": str(exc)}
    except Exception as exc:  # a model the compiler misread must not fail its packaging
        log.warning("fast path not compiled: %s: %s", type(exc).__name__, exc)
        return {"path": "plain", "reason": f"the plan could not be built ({type(exc).__name__}: "
                                           f"{str(exc)[:200]})"}
    (folder / FILE).write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))
    return {"path": "plan", "estimator": data["estimator"]["kind"], **checked}


def describe(flavor_info: dict | None, flavor: str | None = None) -> dict:
    """``{"path": "plan" | "plain", "reason": …}`` of a manifest's flavor info."""
    info = (flavor_info or {}).get("fast_path")
    if info:
        return dict(info)
    reason = "packaged before fast paths existed" if flavor in (
        "sklearn", "lightgbm", "xgboost", None) else \
        f"the plan covers scikit-learn pipelines; this is a {flavor} model"
    return {"path": "plain", "reason": reason}


def load_plan(root: Path, manifest, model: Any) -> Plan | None:
    """The plan of a loaded package, or None (plain path). Its bytes are checked against the
    sha256 the manifest lists for them (IntegrityError if they differ): the plan may be read
    long after the package was verified."""
    info = manifest.flavor_info.get("fast_path") or {}
    if info.get("path") != "plan" or FILE not in manifest.files:
        return None
    raw = (Path(root) / FILE).read_bytes()
    if sha256_bytes(raw) != manifest.files[FILE]:
        raise IntegrityError(f"{FILE} in {root} does not match its recorded sha256 (tampered or "
                             "corrupted)", hint="refusing to use it; re-fetch or re-package "
                             "the model")
    try:
        data = json.loads(raw.decode("utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"plan format {data.get('format')!r}")
        estimator = _final_estimator(model) if data["estimator"]["kind"] == "estimator" else None
        return Plan(data, manifest.input_signature.names, estimator)
    except Exception as exc:  # serve it the plain way, and say why
        log.warning("the fast path of %s cannot be used (%s); serving the plain way", root, exc)
        return None


def _final_estimator(model: Any):
    """The loaded model's estimator, called on the plan's float matrix as the plain path calls
    it: a pipeline's last step, or a LightGBM model's booster without its preprocessing."""
    from modelloop.registry.flavors import LightGBMModel

    if isinstance(model, LightGBMModel):
        return LightGBMModel(None, model.booster, model.classes_)
    return model.steps[-1][1]


# -- checking ------------------------------------------------------------------------------------
def check(model, plan: Plan, data: dict, signature, probe=None) -> dict:
    """Compare the plan with the pipeline on the probe rows; Unsupported says where they differ."""
    import warnings

    import numpy as np

    from modelloop.common.predictions import labels_and_proba
    from modelloop.common.threads import small_work_threads
    from modelloop.registry.fastpath.probe import as_rows, given_rows, synthetic_rows

    frames = [("synthetic rows", synthetic_rows(data, signature, PROBE_ROWS))]
    if probe is not None and len(probe):
        frames.insert(0, ("training rows", given_rows(probe, PROBE_ROWS)))
    worst, rows = 0.0, 0
    # a few hundred rows: one OpenMP thread (see common/threads.py; on a busy machine the
    # pipeline's predictions here took seconds of a train job's time on two)
    with warnings.catch_warnings(), small_work_threads(PROBE_ROWS):
        warnings.simplefilter("ignore")
        for what, frame in frames:
            frame = signature.validate(frame)
            expected, proba = labels_and_proba(model, frame, plan.has_proba)  # once per probe
            expected = np.asarray(expected)
            proba = None if proba is None else np.asarray(proba)
            for shape, X in (("DataFrame", frame), ("rows", as_rows(frame, signature))):
                worst = max(worst, _compare(plan, X, expected, proba, f"{what} ({shape})"))
            rows += len(frame)
    return {"probe_rows": rows, "max_relative_difference": float(f"{worst:.3g}")}


def _compare(plan: Plan, X, expected, expected_proba, what: str) -> float:
    import numpy as np

    classifier = plan.classes is not None
    want = [False] + ([True] if plan.has_proba else [])
    worst = 0.0
    for proba in want:
        labels, probs = plan.predict(X, proba)
        labels = np.asarray(labels)
        if classifier:
            if labels.tolist() != expected.tolist():
                bad = int(np.flatnonzero(labels != expected)[0]) if labels.shape == \
                    expected.shape else 0
                raise Unsupported(f"the plan's labels differ from the pipeline's on {what}, "
                                  f"row {bad}")
        else:
            worst = max(worst, _difference(labels, expected, what, "values"))
        if proba:
            worst = max(worst, _difference(probs, expected_proba, what, "probabilities"))
    return worst


def _difference(got, expected, what: str, name: str) -> float:
    import numpy as np

    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        raise Unsupported(f"the plan's {name} have shape {got.shape}, the pipeline's "
                          f"{expected.shape} ({what})")
    if not np.array_equal(np.isnan(got), np.isnan(expected)):
        raise Unsupported(f"the plan's {name} are missing where the pipeline's are not ({what})")
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if expected.size else 1.0
    diff = np.abs(np.nan_to_num(got - expected))
    allowed = RTOL * np.abs(np.nan_to_num(expected)) + 1e-3 * RTOL * scale
    if (diff > allowed).any():
        i = np.unravel_index(int(np.argmax(diff - allowed)), diff.shape)
        raise Unsupported(f"the plan's {name} differ from the pipeline's by "
                          f"{float(diff[i]):.3g} at {list(map(int, i))} ({what})")
    rel = diff / np.maximum(np.abs(np.nan_to_num(expected)), 1e-300)
    return float(rel[diff > 0].max()) if (diff > 0).any() else 0.0
