"""Snapshots as model versions: an online variant's checkpoint registered in the registry.

The version's package holds the model (flavor ``river``: cloudpickle) with its lineage (the
endpoint, variant, spec and the ranges of event seqs the model learned from) and its prequential
metrics. The learner wrote those bytes itself, so the registration records trust with the
reason saying so (the registry's trust record); a user's upload is never trusted implicitly.
Once registered, batch transform, evaluate and rollbacks treat it as any version.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from modelloop.errors import NotFound
from modelloop.online.intake import EventSchema
from modelloop.online.publish import loads


def _signature(schema: EventSchema | None) -> dict:
    """The schema's features as the version's input signature (none known without one)."""
    if schema is None:
        return {"columns": []}
    return {"columns": [{"name": n, "type": "double" if kind == "number" else "string",
                         "required": n not in schema.optional}
                        for n, kind in sorted(schema.features.items())]}  # fmt: skip


def register_snapshot(
    registry,
    store,
    endpoint: str,
    variant: str,
    name: str,
    *,
    schema: EventSchema | None = None,
    description: str | None = None,
) -> dict:
    """Register the variant's latest checkpoint as the next version of model ``name``."""
    row = store.get_online_model(endpoint, variant)
    if row is None:
        raise NotFound(f"online variant {endpoint}/{variant} has no checkpoint yet")
    from modelloop.registry.package import save_package

    # Written by modelloop's learner into the metadata store (see publish.py).
    model = loads(row["model"])
    info = row["info"]
    lineage = {"online": {"endpoint": endpoint, "variant": variant, "spec": info.get("spec"),
                          "revision": row["revision"], "applied_seq": row["applied_seq"],
                          "events": info.get("ranges", []), "warm_start": info.get("warm", [])}}  # fmt: skip
    metrics = {f"prequential_{info.get('metric', 'metric')}": info.get("value"),
               "events": info.get("events")}  # fmt: skip
    if info.get("champion") is not None:
        metrics[f"champion_{info.get('metric', 'metric')}"] = info["champion"]
    folder = Path(tempfile.mkdtemp(prefix="modelloop-snapshot-"))
    try:
        save_package(model, folder / "package", signature=_signature(schema),
                     flavor="river", metrics=metrics, lineage=lineage,
                     params={"spec": info.get("spec")})  # fmt: skip
        reason = (f"written by modelloop's online learner of {endpoint}/{variant} (revision "
                  f"{row['revision']}, events up to seq {row['applied_seq']})")  # fmt: skip
        return registry.register(name, folder / "package", description=description,
                                 trust_pickle=True, reason=reason)  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
