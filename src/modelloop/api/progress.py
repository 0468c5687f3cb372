"""Progress as it happens: a route whose method reports progress through a callback (a rollout's
steps, a loop's steps) answers, when the caller asks for it (``Accept: application/x-ndjson``),
with one JSON object a line: ``{"progress": value}`` for each call of the callback, then
``{"result": value}``, or ``{"error": {...}, "status": N}`` when the method failed after it had
begun reporting (an error before its first report is the usual JSON error with its status). A
blank line every :data:`HEARTBEAT` seconds keeps a quiet connection (a long bake) from timing out.
Without that ``Accept``, the route answers the result alone, as JSON.

The method runs in a thread of its own; the answer's lines are written as its reports arrive, so
what the remote CLI prints is what the local one prints, when it happens."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import StreamingResponse

from modelloop.api.errors import describe
from modelloop.remote.codec import encode

NDJSON = "application/x-ndjson"
#: Seconds between blank lines on a quiet stream (the client's read timeout is far longer).
HEARTBEAT = 15.0


def wanted(request: Request) -> bool:
    """Whether the caller asked for the progress lines."""
    return NDJSON in request.headers.get("accept", "")


def stream(call: Callable[[Callable[[Any], None]], Any]) -> Any:
    """``call(report)`` in a thread, its reports and result as NDJSON lines; an error raised
    before the first report is raised here (the route's usual error answer)."""
    events: queue.SimpleQueue = queue.SimpleQueue()

    def work() -> None:
        try:
            events.put(("result", call(lambda value: events.put(("progress", value)))))
        except BaseException as exc:  # noqa: BLE001 - sent to the caller as an error line
            events.put(("error", exc))

    threading.Thread(target=work, name="api progress", daemon=True).start()
    first = events.get()
    if first[0] == "error":
        raise first[1]
    return StreamingResponse(_lines(first, events), media_type=NDJSON)


def _lines(first: tuple, events: queue.SimpleQueue) -> Iterator[bytes]:
    event: tuple | None = first
    while True:
        if event is None:
            yield b"\n"
        else:
            kind, value = event
            if kind == "error":
                status, body = describe(value)
                yield _dumps({**body, "status": status})
                return
            yield _dumps({kind: encode(value)})
            if kind == "result":
                return
        try:
            event = events.get(timeout=HEARTBEAT)
        except queue.Empty:
            event = None


def _dumps(value: dict) -> bytes:
    try:
        return orjson.dumps(value) + b"\n"
    except TypeError:  # an integer beyond 64 bits
        import json

        return json.dumps(value, default=str).encode() + b"\n"
