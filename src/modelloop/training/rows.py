"""Which rows a model trained on, so that no evaluation scores it on them.

Dataset versions are cumulative (``loans@5`` holds every row of ``loans@4``), so "evaluate on a
later version" quietly includes the training rows. A train or tune job therefore records exactly
what it read: the data parts (each named by the sha256 of its Parquet bytes, so the identity holds
across datasets and workspaces) in its lineage inputs, and which rows of them were its validation
split (the job artifact :data:`VALIDATION_ARTIFACT`, one bit per row). A row is identified by its
part and its position in the part; a model *trained on* every row of the parts it read except its
validation rows. When the validation record is missing (a model registered from a folder, a job
from before it was recorded) every row of the parts counts as trained on: never too few.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from modelloop.errors import InvalidInput

#: The job artifact listing, per part read, which rows were the validation split.
VALIDATION_ARTIFACT = "rows/validation.json"


@dataclass
class TrainingRows:
    """The rows one model trained on: per part digest, a mask of trained rows (None: all)."""

    model: str
    read: list[str] = field(default_factory=list)  # the dataset refs it read, e.g. churn@1..3
    parts: dict[str, Any] = field(default_factory=dict)  # digest -> numpy bool mask | None
    known: bool = True  # False: its lineage names no data (nothing can be checked)
    versions: dict[str, int] = field(default_factory=dict)  # dataset name -> newest version read

    def trained(self, part: dict):
        """Mask over the part's rows: True where this model trained on the row."""
        import numpy as np

        mask = self.parts.get(part["digest"], False)
        if mask is False:
            return np.zeros(part["rows"], dtype=bool)
        if mask is None or len(mask) != part["rows"]:
            return np.ones(part["rows"], dtype=bool)
        return mask

    def overlap(self, parts: list[dict]) -> int:
        """How many rows of ``parts`` this model trained on."""
        return int(sum(self.trained(p).sum() for p in parts if p["digest"] in self.parts))


def validation_record(parts: list[dict], valid_positions) -> dict:
    """What a training job stores: per part read, its validation rows as a packed bit mask.

    ``valid_positions`` are row positions in the frame read from ``parts`` in order (the index a
    split keeps), or None when the validation rows came from elsewhere (a holdout dataset).
    """
    import numpy as np

    total = sum(p["rows"] for p in parts)
    valid = np.zeros(total, dtype=bool)
    if valid_positions is not None:
        valid[np.asarray(valid_positions, dtype=np.int64)] = True
    out, start = [], 0
    for p in parts:
        bits = np.packbits(valid[start:start + p["rows"]])
        out.append({"digest": p["digest"], "rows": p["rows"],
                    "validation": base64.b64encode(bits.tobytes()).decode()})
        start += p["rows"]
    return {"parts": out}


def training_rows(store, artifacts, datasets, record: dict) -> TrainingRows:
    """The rows the registered model ``record`` trained on, from its lineage and training job."""
    import numpy as np

    from modelloop.errors import ModelloopError

    lineage = record.get("manifest", {}).get("lineage") or {}
    job = store.get_job(record["job_id"]) if record.get("job_id") else None
    inputs = (job or {}).get("inputs") or lineage.get("inputs") or []
    rows = TrainingRows(model=record["ref"])
    for item in inputs:
        if item.get("kind") != "dataset" or item.get("role") == "holdout":
            continue
        rows.read.append(item["ref"])
        parts = item.get("parts")
        if parts is None:  # recorded before jobs listed their parts: the version's parts
            try:
                since = ((job or {}).get("spec") or {}).get("since")
                parts = datasets.parts(item["ref"], since=since)
            except ModelloopError:
                parts = []
                rows.known = False
        for p in parts:
            rows.parts[p["digest"]] = None
            name = item["ref"].partition("@")[0]
            rows.versions[name] = max(rows.versions.get(name, 0), int(p.get("version") or 0))
    if not rows.read:
        rows.known = False
        return rows
    if job is not None:
        found = {a["name"]: a["digest"] for a in store.job_artifacts(job["id"])}
        if VALIDATION_ARTIFACT in found:
            recorded = json.loads(artifacts.read_bytes(found[VALIDATION_ARTIFACT]))
            masked: set[str] = set()
            for p in recorded["parts"]:
                if p["digest"] in rows.parts:
                    bits = np.frombuffer(base64.b64decode(p["validation"]), dtype=np.uint8)
                    trained = ~np.unpackbits(bits, count=p["rows"]).astype(bool)
                    if p["digest"] in masked:  # the same content read twice: trained if either
                        trained |= rows.parts[p["digest"]]
                    rows.parts[p["digest"]] = trained
                    masked.add(p["digest"])
    return rows


def unseen_mask(parts: list[dict], models: list[TrainingRows]):
    """Over the rows read from ``parts`` (in order): True where none of ``models`` trained on it."""
    import numpy as np

    masks = []
    for p in parts:
        seen = np.zeros(p["rows"], dtype=bool)
        for m in models:
            if p["digest"] in m.parts:
                seen |= m.trained(p)
        masks.append(~seen)
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def fresh_rows_hint(dataset, models: list[TrainingRows]) -> str:
    """How to name rows none of ``models`` trained on: the range after their newest version."""
    newest = max((m.versions.get(dataset.name, 0) for m in models), default=0)
    if newest and dataset.version > newest:
        return f"use {dataset.name}@{newest}..{dataset.version}: only the rows added after " \
               f"version {newest}, which no model here read"
    if newest:
        return f"every version of {dataset.name} up to {dataset.version} was read in training: " \
               "ingest new data and evaluate on the rows it adds (NAME@A..B)"
    return "evaluate on rows neither model read in training"


def check_holdout(read, parts, holdout, held) -> None:
    """A holdout must hold no row the model will train on (every row read, with a holdout)."""
    newest = max((p["version"] for p in parts), default=0)
    trained = TrainingRows(model="the model", read=[read.ref],
                           parts={p["digest"]: None for p in parts})
    shared = trained.overlap(held)
    if not shared:
        return
    total = sum(p["rows"] for p in held)
    if holdout.name == read.name and holdout.version > newest:
        fix = f"hold out {holdout.name}@{newest}..{holdout.version}: only the rows added " \
              f"after the training data"
    else:
        fix = "hold out rows added after the training data (train on NAME@A, hold out " \
              "NAME@A..B), or rows of another dataset"
    raise InvalidInput(
        f"{shared:,} of the {total:,} rows of the holdout {holdout.ref} are in the training "
        f"data {read.ref}: the model would be validated on rows it trained on", hint=fix)


def check_overlap(
    models: list[TrainingRows], parts: list[dict], version, since, policy: str
) -> dict:
    """Count the rows of the evaluation data (``parts`` of ``version``) each model (the evaluated
    one first, then its baseline) trained on; refuse per ``policy`` (refuse, exclude, allow)."""
    total = sum(p["rows"] for p in parts)
    counts = [m.overlap(parts) for m in models]
    either = total - int(unseen_mask(parts, models).sum())
    found = {"rows": total, "model": counts[0], "policy": policy,
             "unknown": [m.model for m in models if not m.known]}
    if len(models) > 1:
        found["baseline"] = counts[1]
    if either == 0:
        return found
    what = f"{version.ref}" + (f" (since {since})" if since else "")
    says = [f"{n:,} of the {total:,} rows of {what} are rows {m.model} trained on "
            f"(it read {', '.join(m.read)})" for m, n in zip(models, counts, strict=True) if n]
    if policy == "refuse":
        raise InvalidInput(
            "; ".join(says),
            hint=fresh_rows_hint(version, models) + "; or pass --exclude-overlap to score on "
            "the rows neither model trained on (--allow-overlap scores them anyway)")
    if policy == "exclude":
        if either == total:
            raise InvalidInput(
                f"no rows left to evaluate on: {'; '.join(says)}",
                hint=fresh_rows_hint(version, models))
        found["excluded"] = either
    return found
