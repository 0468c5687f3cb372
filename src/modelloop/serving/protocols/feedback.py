"""Ground truth for earlier predictions: ``POST /endpoints/{name}/feedback`` with
``{"inference_id", "label"}`` (one, a list, or JSON Lines), stored as ``modelloop monitor
labels`` stores them, for model-quality monitoring. ``?id_column=`` and ``?label_column=`` name
other fields.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error, read_body
from modelloop.serving.protocols.content import JSON_LINES, json_lines, loads_json, media_type

#: Largest feedback body, in bytes.
MAX_FEEDBACK_BYTES = 64 * 1024 * 1024


class Feedback(Protocol):
    name = "feedback"
    access = "labels"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def feedback(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                plane.runtime(name)  # 404 for an endpoint this server does not know
                body = await read_body(request, MAX_FEEDBACK_BYTES)
                records = decode_feedback(body, request.headers.get("content-type", ""))
                q = request.query_params
                columns = {"id_column": q.get("id_column", "inference_id"),
                           "label_column": q.get("label_column", "label")}
                out = await run_in_threadpool(server.add_labels, name, records, **columns)
                if plane.runtime(name).learns and server.learn_feedback is not None:
                    # an online endpoint also learns from it: joined to the request's features
                    learned = await run_in_threadpool(server.learn_feedback, name, records,
                                                      **columns)
                    out = {**out, "events": learned}
                    if learned["rejected"]:
                        return JSONResponse({**out, "message": learned["message"]}, 422)
            except Exception as exc:
                return plain_error(exc)
            return JSONResponse(out)

        return [Route("/endpoints/{name}/feedback", feedback, methods=["POST"])]


def decode_feedback(body: bytes, content_type: str) -> list:
    """The body of ``POST /endpoints/NAME/feedback``: one JSON object, a list of them, or JSON
    Lines; the records are checked by the labels store."""
    return decode_records(body, content_type, "feedback", "label",
                          '{"inference_id": "...", "label": ...}')


def decode_records(body: bytes, content_type: str, what: str, item: str, example: str) -> list:
    """One JSON object, a list of objects, or JSON Lines (one object a line) as a list of
    dicts; ``what`` the body is and ``item`` one record of it, for the errors."""
    ctype, _ = media_type(content_type)
    if ctype in JSON_LINES:
        records = []
        for n, line in json_lines(body):
            records.append(loads_json(line, f"line {n}"))
            if not isinstance(records[-1], dict):
                raise InvalidInput(f"line {n} is not a JSON object",
                                   hint=f"send one {example} per line")
        return records
    if ctype not in ("", "application/json"):
        raise InvalidInput(f"{what} cannot be {ctype}",
                           hint="send application/json or application/jsonlines")
    doc = loads_json(body)
    if not isinstance(doc, dict | list):
        raise InvalidInput(f"{what} must be a JSON object or a list of objects",
                           hint=f"send {example} or a list of them")
    records = [doc] if isinstance(doc, dict) else doc
    for n, record in enumerate(records, 1):  # the receiver checks the fields
        if not isinstance(record, dict):
            raise InvalidInput(f"{item} {n} is not a JSON object",
                               hint=f"send {example} or a list of them")
    return records


