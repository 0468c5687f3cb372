"""Cache keys: a step's recipe (its code, parameters and inputs by content) and its hash.

Two attempts with the same recipe compute the same output, so the second reuses the first's.
Parameters enter by value (a JSON-able stand-in), dataset inputs by content hash, outputs of
other steps by digest; the step's own source is hashed too, so editing a step misses the cache.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from modelloop.common.hashing import sha256_bytes
from modelloop.pipelines.graph import ENGINE_VERSION, DatasetInput, Step, StepOptions


def canonical(value: Any) -> Any:
    """A JSON-able, stable stand-in for a parameter value (hashed into cache keys)."""
    try:
        json.dumps(value, sort_keys=True, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, DatasetInput):
        return {"dataset": value.ref, "content_hash": value.content_hash}
    try:
        return {"pickle_sha256": sha256_bytes(pickle.dumps(value, protocol=5))}
    except Exception:
        return {"repr": repr(value)}


def recipe(step: Step, params: dict, inputs: dict) -> dict:
    """What a step's output depends on: ``params`` by value, ``inputs`` by content."""
    return {
        "engine": ENGINE_VERSION,
        "function": step.ref,
        "source": step.source_hash,
        "cache_version": step.options.cache_version,
        "params": params,
        "inputs": inputs,
    }


def recipe_key(recipe: dict) -> str:
    return sha256_bytes(json.dumps(recipe, sort_keys=True, default=str))


def recorded_inputs(params: dict, inputs: dict) -> dict:
    """What was passed, for the run record: params by value, datasets by ref, outputs by digest."""
    return {**params, **{arg: {"dataset": i["dataset"]} if "dataset" in i else i
                         for arg, i in inputs.items()}}


def verdict(options: StepOptions, found: dict | None, age: float | None, exists) -> dict | str:
    """The earlier step run to reuse, or why there is none ("off", "miss", "expired", "missing").

    ``age`` is how many seconds ago ``found`` ended; ``exists(digest)`` whether a blob is kept.
    """
    if not options.cache:
        return "off"
    if found is None:
        return "miss"
    if options.cache_expires is not None and age is not None and age > options.cache_expires:
        return "expired"
    if not all(exists(o["digest"]) for o in found["outputs"]):
        return "missing"
    return found
