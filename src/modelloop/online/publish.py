"""Publishing an online variant's model for serving, and reading it back.

The learner writes its model (with its checkpoint) into the variant's ``online_models`` row;
each write grows ``revision``. Serving workers poll :func:`current_revision` (one indexed read)
and, when it grew, swap in :func:`load_published`'s model.

Trust: the bytes are cloudpickle written by modelloop's own learner into the metadata store (no
user uploads them), so loading them trusts the store, as every worker already does.
"""

from __future__ import annotations

import cloudpickle

from modelloop.errors import NotFound


def dumps(obj) -> bytes:
    return cloudpickle.dumps(obj)


def loads(data: bytes):
    return cloudpickle.loads(data)


def current_revision(store, endpoint: str, variant: str) -> int:
    """The published model's revision, 0 before the first publication."""
    return store.online_model_revision(endpoint, variant)


def load_published(store, artifacts, endpoint: str, variant: str) -> tuple[int, object]:
    """``(revision, model)`` of the variant's published model (``artifacts`` is unused: the
    model lives in the store's row, written with its revision in one transaction)."""
    row = store.get_online_model(endpoint, variant)
    if row is None:
        raise NotFound(
            f"online variant {endpoint}/{variant} has published no model yet",
            hint="start its learner (modelloop learn) or wait for its first checkpoint",
        )
    return row["revision"], loads(row["model"])


def published_info(store, endpoint: str, variant: str) -> dict | None:
    """The published row without its bytes: revision, applied_seq, info (metrics, guard)."""
    row = store.get_online_model(endpoint, variant)
    if row is None:
        return None
    row.pop("model", None)
    return row
