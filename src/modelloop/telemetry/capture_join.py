"""The features of captured requests, by inference id: how feedback on an online endpoint
becomes a labelled event when the request was answered by another server process.

The capture index (``capture_ids``) says in one lookup whether an id was captured at all; only
then are capture files read, newest first, until every wanted id is found. Records captured
without their input (``mode: output``) cannot be joined.
"""

from __future__ import annotations

import json

from modelloop.telemetry.capture import known_inference_ids


def captured_features(store, artifacts, endpoint: str, ids: set[str],
                      max_files: int = 200) -> dict[str, dict]:
    """id -> {feature: value} for those of ``ids`` whose request was captured with its input
    (a multi-row request's row i as ``ID:i``); reads at most ``max_files`` newest files."""
    wanted = known_inference_ids(store, artifacts, endpoint, ids)
    found: dict[str, dict] = {}
    if not wanted:
        return found
    files = store.list_capture_files(endpoint)
    for f in reversed(files[-max_files:]):
        for line in artifacts.read_bytes(f["digest"]).decode().splitlines():
            if not line:
                continue
            rec = json.loads(line)
            ident = str(rec.get("eventMetadata", {}).get("inferenceId"))
            inp = rec.get("captureData", {}).get("endpointInput")
            if inp is None:
                continue
            doc = json.loads(inp["data"])
            rows = doc.get("data") or []
            names = [ident] if len(rows) == 1 else [f"{ident}:{i}" for i in range(len(rows))]
            for name, row in zip(names, rows, strict=True):
                if name in wanted and name not in found:
                    found[name] = dict(zip(doc["columns"], row, strict=True))
        if len(found) == len(wanted):
            break
    return found
