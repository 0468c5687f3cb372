"""Feature attribution drift: SHAP importances on captured traffic against the training data's.

An endpoint monitor with a model and ``attribution`` in its config explains, each run, up to
``rows`` captured rows and as many rows of the baseline's dataset version
(:func:`modelloop.explain.attributions.explain`: TreeSHAP or Kernel SHAP) and compares the two
rankings of global importance (mean absolute SHAP per column) by NDCG, as SageMaker Clarify's
model explainability monitor does: with the baseline importances ``a``, the traffic's ranking
``F`` and the baseline's own ranking ``F*``,
``NDCG = sum_i a(F[i]) / log2(i + 1) / sum_i a(F*[i]) / log2(i + 1)`` (i from 1); below
``threshold`` (default 0.90, Clarify's) is a violation. It writes the series
``attribution.ndcg`` (dimension ``monitor``) and ``attribution`` (dimensions ``monitor`` and
``feature``) for alarms.

Config: ``{"rows": 200, "threshold": 0.9, "method": "auto", "nsamples": 100, "centroids": 10}``.
"""

from __future__ import annotations

import math

from modelloop.errors import InvalidInput

KEYS = ("rows", "threshold", "method", "nsamples", "centroids")
DEFAULTS = {"rows": 200, "threshold": 0.9, "method": "auto", "nsamples": 100, "centroids": 10}


def check_config(cfg: dict) -> dict:
    if cfg is True:
        cfg = {}
    if not isinstance(cfg, dict):
        raise InvalidInput("attribution drift config must be a mapping",
                           hint='e.g. {"rows": 200, "threshold": 0.9}')  # fmt: skip
    unknown = [k for k in cfg if k not in KEYS]
    if unknown:
        raise InvalidInput(f"attribution drift config has unknown key {unknown[0]!r}",
                           hint=f"use {', '.join(KEYS)}")  # fmt: skip
    out = {**DEFAULTS, **cfg}
    for key in ("rows", "nsamples", "centroids"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise InvalidInput(f"attribution drift: {key} must be a whole number >= 1")
    if not isinstance(out["threshold"], int | float) or not 0 <= out["threshold"] <= 1:
        raise InvalidInput("attribution drift: threshold must be between 0 and 1")
    if out["method"] not in ("auto", "tree", "kernel"):
        raise InvalidInput("attribution drift: method must be auto, tree or kernel")
    return out


def ndcg(baseline: dict[str, float], live: dict[str, float]) -> float:
    """Clarify's NDCG of the live ranking against the baseline importances (1 = same order)."""
    ideal = sorted(baseline, key=lambda c: -baseline[c])
    ranked = sorted(baseline, key=lambda c: -live.get(c, 0.0))
    gain = lambda order: sum(baseline[c] / math.log2(i + 2) for i, c in enumerate(order))  # noqa: E731
    best = gain(ideal)
    return 1.0 if best == 0 else gain(ranked) / best


def attribution_drift(model, live, reference, cfg, monitor: str, end) -> tuple[dict, list]:
    """(report section, metric points) of one run."""
    from modelloop.explain.attributions import explain

    cfg = check_config(cfg)
    kwargs = {"rows": cfg["rows"], "method": cfg["method"], "nsamples": cfg["nsamples"],
              "centroids": cfg["centroids"], "background": reference}  # fmt: skip
    base = explain(model, reference, **kwargs)
    now = explain(model, live, **kwargs)
    score = ndcg(base.global_importance, now.global_importance)
    section = {"method": now.method, "output": now.output, "ndcg": score,
               "threshold": cfg["threshold"], "baseline": base.global_importance,
               "current": now.global_importance, "cost": now.cost, "violations": []}  # fmt: skip
    if score < cfg["threshold"]:
        section["violations"].append(
            {"metric": "ndcg", "value": score, "threshold": cfg["threshold"],
             "description": f"the ranking of feature attributions drifted: NDCG {score:.3f} < "
                            f"{cfg['threshold']:g}"})  # fmt: skip
    dims = {"monitor": monitor}
    points = [("attribution.ndcg", dims, end, float(score))]
    points += [("attribution", {**dims, "feature": c}, end, float(v))
               for c, v in now.global_importance.items()]  # fmt: skip
    return section, points
