"""An endpoint's spec: its variants, capture settings and serving options, checked at the door.

Stored as JSON in the metadata store; every server process builds its runtime from it. Variants
name a pinned model version (``churn@3``), a weight (relative share of primary traffic) and a role:
``primary`` variants answer requests, ``shadow`` variants get a mirrored copy of a sampled share
and only have their outputs captured.
"""

from __future__ import annotations

import copy
import re

from modelloop.errors import InvalidInput

VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ROLES = ("primary", "shadow")
CAPTURE_MODES = ("input", "output", "both")

DEFAULT_OPTIONS = {
    "timeout_seconds": 60.0,  # per request, as SageMaker's container contract
    "max_payload_mb": 6.0,  # SageMaker's runtime limit
    "max_batch_rows": 256,  # micro-batching: rows gathered into one predict call
    "max_request_rows": 100_000,  # rows one request may carry, checked before rows are built
    "max_wait_ms": 0.0,  # extra wait to gather a batch (0: only what queued during a predict)
}
DEFAULT_CAPTURE = {"enabled": False, "sampling": 100.0, "mode": "both"}


def variant_name_for(model_ref: str) -> str:
    """``churn@3`` -> ``churn-v3``: the default variant name of a model version."""
    name, _, version = model_ref.partition("@")
    return f"{name}-v{version}"[:63]


def check_variant(v: dict) -> dict:
    if not isinstance(v, dict) or "model" not in v:
        raise InvalidInput("a variant needs at least a model", hint="e.g. {'model': 'churn@3'}")
    out = {
        "name": str(v.get("name") or variant_name_for(str(v["model"]))),
        "model": str(v["model"]),
        "weight": v.get("weight", 100.0),
        "role": v.get("role", "primary"),
        "sample": v.get("sample", 100.0),
    }
    if not VARIANT_RE.match(out["name"]):
        raise InvalidInput(
            f"invalid variant name {out['name']!r}",
            hint="use up to 63 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    if out["role"] not in ROLES:
        raise InvalidInput(f"variant {out['name']!r} has role {out['role']!r}",
                           hint="use primary or shadow")
    for key in ("weight", "sample"):
        try:
            out[key] = float(out[key])
        except (TypeError, ValueError):
            raise InvalidInput(f"variant {out['name']!r}: {key} must be a number") from None
    if out["weight"] < 0:
        raise InvalidInput(f"variant {out['name']!r} has a negative weight",
                           hint="weights are relative shares, 0 or more")
    if not 0 <= out["sample"] <= 100:
        raise InvalidInput(f"variant {out['name']!r}: sample must be a percentage (0-100)")
    return out


def check_spec(spec: dict) -> dict:
    """A complete, normalised spec; raises InvalidInput naming the wrong field."""
    spec = copy.deepcopy(spec)
    variants = [check_variant(v) for v in spec.get("variants") or []]
    names = [v["name"] for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"variant {dupes[0]!r} is listed twice",
                           hint="give each variant its own name (--variant NAME=MODEL)")
    primaries = [v for v in variants if v["role"] == "primary"]
    if variants and not primaries:
        raise InvalidInput("an endpoint needs at least one primary variant",
                           hint="shadow variants only receive copies of primary traffic")
    if primaries and sum(v["weight"] for v in primaries) <= 0:
        raise InvalidInput("the primary variants' weights add up to 0",
                           hint="give at least one primary variant a positive weight")
    capture = {**DEFAULT_CAPTURE, **(spec.get("capture") or {})}
    if capture["mode"] not in CAPTURE_MODES:
        raise InvalidInput(f"capture mode {capture['mode']!r} is unknown",
                           hint=f"use one of {', '.join(CAPTURE_MODES)}")
    try:
        capture["sampling"] = float(capture["sampling"])
    except (TypeError, ValueError):
        raise InvalidInput("capture sampling must be a percentage") from None
    if not 0 <= capture["sampling"] <= 100:
        raise InvalidInput("capture sampling must be between 0 and 100 (percent)")
    options = {**DEFAULT_OPTIONS, **(spec.get("options") or {})}
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise InvalidInput(f"unknown endpoint option {unknown[0]!r}",
                           hint=f"options: {', '.join(DEFAULT_OPTIONS)}")
    for key, value in options.items():
        try:
            options[key] = int(value) if key in ("max_batch_rows", "max_request_rows") \
                else float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"endpoint option {key} must be a number") from None
        if options[key] < 0 or (key in ("timeout_seconds", "max_payload_mb", "max_batch_rows",
                                       "max_request_rows")
                                and options[key] <= 0):
            raise InvalidInput(f"endpoint option {key} must be positive")
    return {"variants": variants, "capture": capture, "options": options,
            "follow": spec.get("follow"), "deploy": spec.get("deploy") or {}}
