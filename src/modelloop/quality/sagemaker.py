"""SageMaker Model Monitor's ``statistics.json`` / ``constraints.json`` for a baseline.

Each feature also carries a ``modelloop`` key (:data:`EXTENSION`) with its role and exact profile,
so that an exported baseline imports back exactly; SageMaker ignores it. Files from SageMaker get
the default roles and numeric profiles rebuilt from their KLL sketches.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from modelloop.errors import InvalidInput
from modelloop.quality.baseline import Baseline, check_roles
from modelloop.quality.profiles import (
    DOMAIN_LIMIT,
    EXACT_LIMIT,
    CategoricalProfile,
    NumericProfile,
    Profile,
    cell_index,
    grid_exponent,
    profile_from_dict,
)

#: Number of quantile points written as the KLL sketch in SageMaker's statistics.json.
SKETCH_POINTS = 1024
#: Key of modelloop's additions to SageMaker's files (roles, exact profiles, the original
#: monitoring config), so that an exported baseline imports back exactly; SageMaker ignores it.
EXTENSION = "modelloop"


def to_sagemaker(baseline: Baseline, config: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(statistics.json, constraints.json)`` dicts in SageMaker Model Monitor's layout.

    The numeric distribution is written as SageMaker does: 10 equal-width buckets and a KLL
    sketch, whose data here is the exact values (small columns) or 1,024 quantile points.
    ``config`` (a CheckConfig) fills ``monitoring_config``; SageMaker's defaults otherwise.

    Each feature also carries a ``modelloop`` key with its role and exact profile, columns of
    types we do not profile are listed with ``inferred_type`` ``Unknown``, and
    constraints.json's ``modelloop`` key keeps the baseline's own monitoring config: read
    back with :func:`from_sagemaker`, the baseline checks exactly as the original did.
    """
    from modelloop.quality.check_config import CheckConfig

    features, cfeatures = [], []
    for name, prof in baseline.columns.items():
        con = baseline.constraint(name)
        common = {"num_present": prof.n, "num_missing": prof.missing}
        ext = {EXTENSION: {"role": baseline.role(name), "profile": prof.to_dict()}}
        if isinstance(prof, NumericProfile):
            itype = "Integral" if prof.integral else "Fractional"
            features.append(
                {
                    "name": name,
                    "inferred_type": itype,
                    "numerical_statistics": {
                        "common": common,
                        "mean": prof.mean,
                        "sum": prof.sum,
                        "std_dev": prof.std,
                        "min": prof.min if prof.n else 0.0,
                        "max": prof.max if prof.n else 0.0,
                        "distribution": {"kll": _kll(prof)},
                    },
                    **ext,
                }
            )
            cfeatures.append(
                {
                    "name": name,
                    "inferred_type": itype,
                    "completeness": con["completeness"],
                    "num_constraints": {"is_non_negative": con["is_non_negative"]},
                }
            )
        else:
            buckets = [{"value": k, "count": c} for k, c in prof.to_dict()["counts"]]
            features.append(
                {
                    "name": name,
                    "inferred_type": "String",
                    "string_statistics": {
                        "common": common,
                        "distinct_count": float(prof.n_distinct),
                        "distribution": {"categorical": {"buckets": buckets}},
                    },
                    **ext,
                }
            )
            cf: dict[str, Any] = {
                "name": name,
                "inferred_type": "String",
                "completeness": con["completeness"],
            }
            if "domains" in con:
                cf["string_constraints"] = {"domains": list(con["domains"])}
            cfeatures.append(cf)
    for name in baseline.skipped:
        features.append(
            {"name": name, "inferred_type": "Unknown", EXTENSION: {"role": baseline.role(name)}}
        )
    statistics = {"version": 0.0, "dataset": {"item_count": baseline.n_rows}, "features": features}
    cfg = (
        config
        if config is not None
        else CheckConfig.from_sagemaker(baseline.monitoring_config or {})
    )
    monitoring_config = cfg.to_sagemaker()
    constraints = {
        "version": 0.0,
        "features": cfeatures,
        "monitoring_config": monitoring_config,
    }
    if config is None:
        # the config this baseline really checks with (None: modelloop's defaults), used on
        # import unless someone edited monitoring_config since
        constraints[EXTENSION] = {
            "monitoring_config": baseline.monitoring_config,
            "exported_monitoring_config": copy.deepcopy(monitoring_config),
        }
    return statistics, constraints


def from_sagemaker(
    statistics: dict[str, Any], constraints: dict[str, Any] | None = None
) -> Baseline:
    """Read SageMaker ``statistics.json`` (and optionally ``constraints.json``) dicts.

    Files written by :meth:`to_sagemaker` come back exactly (their ``modelloop`` keys);
    files from SageMaker get the default roles and profiles rebuilt from the KLL sketches.
    """
    try:
        n_rows = int(statistics["dataset"]["item_count"])
        feats = statistics["features"]
    except (KeyError, TypeError) as exc:
        raise InvalidInput(
            f"statistics.json lacks {exc}",
            hint="pass the parsed statistics.json: {'version', 'dataset': {'item_count'}, 'features': [...]}",
        ) from exc
    columns: dict[str, Profile] = {}
    skipped: list[str] = []
    roles: dict[str, str] = {}
    for f in feats:
        name = f.get("name") if isinstance(f, dict) else None
        try:
            ext = f.get(EXTENSION) or {}
            if "role" in ext:
                roles[name] = str(ext["role"])
            if "profile" in ext:
                columns[name] = profile_from_dict(ext["profile"])
            elif "numerical_statistics" in f:
                columns[name] = _numeric_from_sagemaker(f)
            elif "string_statistics" in f:
                s = f["string_statistics"]
                buckets = s.get("distribution", {}).get("categorical", {}).get("buckets", [])
                counts = {str(b["value"]): int(b["count"]) for b in buckets}
                columns[name] = CategoricalProfile(
                    int(s["common"]["num_present"]), int(s["common"]["num_missing"]), counts
                )
                distinct = s.get("distinct_count")
                if distinct is not None and not counts:
                    columns[name].distinct = int(distinct)  # an identifier's buckets dropped
            elif f.get("inferred_type") == "Unknown":
                skipped.append(name)
            else:
                raise KeyError("numerical_statistics or string_statistics")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"statistics.json feature {name!r} lacks or mangles {exc}",
                hint="each feature needs numerical_statistics or string_statistics with common counts",
            ) from exc
    overrides: dict[str, dict[str, Any]] = {}
    config = None
    if constraints:
        for f in constraints.get("features", []):
            o: dict[str, Any] = {}
            if "completeness" in f:
                o["completeness"] = float(f["completeness"])
            if "is_non_negative" in f.get("num_constraints", {}):
                o["is_non_negative"] = bool(f["num_constraints"]["is_non_negative"])
            if "domains" in f.get("string_constraints", {}):
                o["domains"] = [str(v) for v in f["string_constraints"]["domains"]]
            if f.get("name") in columns:
                overrides[f["name"]] = o
        config = constraints.get("monitoring_config")
        ext = constraints.get(EXTENSION) or {}
        if "exported_monitoring_config" in ext and ext["exported_monitoring_config"] == config:
            config = ext.get("monitoring_config")
    return Baseline(n_rows, columns, skipped, overrides, config, check_roles(roles))


def _kll(prof: NumericProfile) -> dict[str, Any]:
    """SageMaker's ``distribution.kll``: 10 equal-width buckets and the sketch's items."""
    if prof.n == 0:
        return {"buckets": [], "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[]]}}
    edges = np.linspace(prof.min, prof.max, 11)
    if prof.values is not None:
        counts = np.histogram(prof.values, bins=edges)[0]
        items = prof.values
    else:
        mids = (prof.offset + np.arange(len(prof.counts)) + 0.5) * prof.width
        counts = np.histogram(np.clip(mids, prof.min, prof.max), bins=edges, weights=prof.counts)[0]
        items = prof.quantiles((np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS)
    buckets = [
        {
            "lower_bound": float(edges[i]),
            "upper_bound": float(edges[i + 1]),
            "count": float(counts[i]),
        }
        for i in range(10)
    ]
    return {
        "buckets": buckets,
        "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[float(v) for v in items]]},
    }


def _numeric_from_sagemaker(f: dict[str, Any]) -> NumericProfile:
    s = f["numerical_statistics"]
    n, missing = int(s["common"]["num_present"]), int(s["common"]["num_missing"])
    prof = NumericProfile(n=n, missing=missing)
    if n == 0:
        return prof
    prof.sum, prof.mean = float(s["sum"]), float(s["mean"])
    prof.m2 = float(s["std_dev"]) ** 2 * n
    prof.min, prof.max = float(s["min"]), float(s["max"])
    prof.integral = f.get("inferred_type") == "Integral"
    kll = s.get("distribution", {}).get("kll", {})
    levels = kll.get("sketch", {}).get("data") or []
    # A KLL sketch's items at level h stand for 2**h values each.
    items = (
        np.concatenate([np.asarray(lv, dtype=float) for lv in levels]) if levels else np.zeros(0)
    )
    weights = (
        np.concatenate([np.full(len(lv), 2.0**h) for h, lv in enumerate(levels)])
        if levels
        else np.zeros(0)
    )
    if items.size == 0:  # no sketch: spread each bucket's count evenly over its range
        pts = [np.linspace(b["lower_bound"], b["upper_bound"], 64) for b in kll.get("buckets", [])]
        wts = [np.full(64, float(b["count"]) / 64) for b in kll.get("buckets", [])]
        items = np.concatenate(pts) if pts else np.array([prof.mean])
        weights = np.concatenate(wts) if wts else np.ones(1)
    exact = len(levels) == 1 and items.size == n and n <= EXACT_LIMIT
    prof.values = np.sort(items) if exact else None
    if exact:
        u, c = np.unique(items, return_counts=True)
        prof.domain = (
            dict(zip(u.tolist(), c.tolist(), strict=True)) if len(u) <= DOMAIN_LIMIT else None
        )
    else:
        prof.domain = None
    e = grid_exponent(prof.min, prof.max)
    idx = cell_index(np.clip(items, prof.min, prof.max), e)
    first = math.floor(math.ldexp(prof.min, -e))
    n_cells = math.floor(math.ldexp(prof.max, -e)) - first + 1
    mass = np.bincount(idx - first, weights=weights, minlength=n_cells)
    mass = mass * (n / mass.sum()) if mass.sum() > 0 else mass
    # rounding the running total keeps the sum at n without shifting mass to either end
    counts = np.diff(np.round(np.cumsum(mass)), prepend=0.0).astype(np.int64)
    prof.exponent, prof.offset, prof.counts = e, first, counts
    return prof
