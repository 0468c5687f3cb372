"""Captured endpoint traffic as monitoring reads it: frames of the capture records that serving
writes (the record format is :mod:`modelloop.telemetry.capture`, below both services)."""

from __future__ import annotations

from datetime import datetime

#: Columns of a capture frame that describe the request, not the model's input or output.
META_COLUMNS = ("inference_id", "event_id", "inference_time", "endpoint", "variant")


def capture_frame(
    store,
    artifacts,
    endpoint: str,
    *,
    variant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Captured records of an endpoint in a window as one frame (see telemetry.capture), possibly
    empty; ``frame.attrs["models"]`` lists the model versions that answered them."""
    from modelloop.telemetry.capture import capture_frame as frame_of
    from modelloop.telemetry.capture import read_capture

    records = read_capture(store, artifacts, endpoint, variant=variant, since=since, until=until)
    frame = frame_of(records)
    frame.attrs["models"] = sorted(
        {(r.get("modelloop") or {}).get("model") for r in records} - {None}
    )
    return frame


def known_inference_ids(store, artifacts, endpoint: str, ids) -> set[str]:
    """Which of ``ids`` name a captured prediction (an indexed lookup; see telemetry.capture)."""
    from modelloop.telemetry.capture import known_inference_ids as known

    return known(store, artifacts, endpoint, ids)


def model_columns(frame) -> list[str]:
    """The model's input features and its prediction, without request metadata or probabilities."""
    return [c for c in frame.columns if c not in META_COLUMNS and not str(c).startswith("proba_")]
