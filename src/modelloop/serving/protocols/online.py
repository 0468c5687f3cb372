"""Labelled events for an online endpoint: ``POST /endpoints/{name}/events`` with
``{"features": {...}, "label": ...}`` (or the features next to ``label``), one, a list, or JSON
Lines. Answered only once the accepted events are durable (the learner's intake): 200 when all
were accepted, 422 naming each rejected one by its index (the accepted ones are kept, so a
client resends only those named). Feedback on an online endpoint's predictions becomes events
too (``protocols/feedback.py``).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error, read_body
from modelloop.serving.protocols.feedback import MAX_FEEDBACK_BYTES, decode_records


class Events(Protocol):
    name = "events"
    access = "labels"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def events(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                rt = plane.runtime(name)  # 404 for an endpoint this server does not know
                if not rt.learns or server.add_events is None:
                    raise InvalidInput(f"endpoint {name!r} is not online: it learns from no "
                                       "events", hint="create one with 'modelloop endpoint "
                                                      "create NAME --online MODEL ...'")
                body = await read_body(request, MAX_FEEDBACK_BYTES)
                records = decode_records(body, request.headers.get("content-type", ""),
                                         "events", "event",
                                         '{"features": {...}, "label": ...}')
                out = await run_in_threadpool(server.add_events, name, records)
            except Exception as exc:
                return plain_error(exc)
            return JSONResponse(out, 422 if out["rejected"] else 200)

        return [Route("/endpoints/{name}/events", events, methods=["POST"])]
