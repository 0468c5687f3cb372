"""Late labels (ground truth for served predictions): their record format and their store.

Serving's feedback route and monitoring's ``labels add`` both store labels here; each label is an
(inference id, label as JSON) pair, matched against the captured predictions by id
(:func:`modelloop.telemetry.capture.known_inference_ids`), and model-quality monitoring joins
them to captured traffic later.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop.common.jsonable import to_jsonable
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound
from modelloop.telemetry.capture import known_inference_ids

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.store import MetadataStore


class Labels:
    """Stores labels of an endpoint's predictions and says how many match a captured one."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore):
        """``store`` holds the labels and the capture index (``LabelStore`` and the capture part
        of ``ServingStore``)."""
        self.store = store
        self.artifacts = artifacts

    def add_file(self, endpoint: str, path, *, id_column: str = "inference_id",
                 label_column: str = "label") -> dict:  # fmt: skip
        """Labels from a CSV or JSON Lines file (``modelloop monitor labels add``)."""
        check_name(endpoint, "endpoint")
        return self.add(endpoint, read_labels(path, id_column=id_column,
                                              label_column=label_column))

    def add_records(self, endpoint: str, records: list[dict], *,
                    id_column: str = "inference_id", label_column: str = "label") -> dict:
        """Labels already parsed (the endpoint server's ``POST /endpoints/NAME/feedback``)."""
        check_name(endpoint, "endpoint")
        return self.add(endpoint, labels_from_records(records, id_column=id_column,
                                                      label_column=label_column))

    def add(self, endpoint: str, rows: list[tuple[str, str]]) -> dict:
        """Store (inference id, label JSON) pairs; counts labels whose inference id matches no
        captured prediction (they are kept: the capture may still be flushing)."""
        stored = self.store.put_labels(endpoint, rows)
        known = known_inference_ids(self.store, self.artifacts, endpoint, [i for i, _ in rows])
        unknown = [i for i, _ in rows if i not in known]
        return {"endpoint": endpoint, "labels": stored, "matched": stored - len(unknown),
                "unknown": len(unknown), "unknown_examples": unknown[:5]}  # fmt: skip


def read_labels(
    path: str | os.PathLike, *, id_column: str = "inference_id", label_column: str = "label"
) -> list[tuple[str, str]]:
    """(inference id, label as JSON) pairs from a CSV or JSON Lines file."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"no such labels file: {p}")
    try:
        if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            frame = pd.read_json(p, lines=True, dtype={id_column: str})
        else:
            frame = pd.read_csv(p, dtype={id_column: str})
    except ValueError as exc:
        raise InvalidInput(f"cannot read labels from {p}: {exc}") from None
    missing = [c for c in (id_column, label_column) if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"labels file {p.name} lacks column(s) {', '.join(missing)}",
            hint=f"give one row per prediction with {id_column} and {label_column} "
            f"(found: {', '.join(map(str, frame.columns))}); see --id-column/--label-column",
        )
    frame = frame[frame[label_column].notna() & frame[id_column].notna()]
    return [
        (str(i), json.dumps(to_jsonable(v, nonfinite="keep")))
        for i, v in zip(frame[id_column], frame[label_column], strict=True)
    ]


def labels_from_records(
    records, *, id_column: str = "inference_id", label_column: str = "label"
) -> list[tuple[str, str]]:
    """(inference id, label as JSON) pairs from parsed JSON objects (the feedback route's body),
    normalised as :func:`read_labels` does for a file; records with a null label are skipped."""
    if not isinstance(records, list) or not records:
        raise InvalidInput(
            "the labels must be a JSON object or a non-empty list of them",
            hint=f'send {{"{id_column}": "...", "{label_column}": ...}}, a list of those, '
            "or JSON Lines",
        )
    out = []
    for n, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInput(f"label {n} is not a JSON object",
                               hint=f'send {{"{id_column}": "...", "{label_column}": ...}}')
        missing = [c for c in (id_column, label_column) if c not in rec]
        if missing:
            raise InvalidInput(
                f"label {n} lacks {', '.join(repr(m) for m in missing)}",
                hint=f"each label needs {id_column!r} and {label_column!r} "
                f"(found: {', '.join(map(str, rec)) or 'nothing'})",
            )
        ident, value = rec[id_column], rec[label_column]
        if isinstance(value, dict | list) or isinstance(ident, dict | list | bool):
            raise InvalidInput(f"label {n}: {id_column} and {label_column} must be plain values",
                               hint="a string or number each")
        if value is None or ident is None:
            continue
        out.append((str(ident), json.dumps(value)))
    return out


