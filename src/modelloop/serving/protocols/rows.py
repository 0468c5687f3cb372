"""Rows for a stream-fed dataset: ``POST /datasets/{name}/rows`` with one JSON object, a list
of them, or JSON Lines. Answered once the rows are durable in the dataset's append buffer
(``ws.datasets.append_rows``); a stream consumer (``modelloop data stream NAME``) commits them
as versions. The serving port takes them so that a producer already talking to a model server
needs no second service; the control plane has the same operation at ``/api/v1``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.errors import InvalidInput
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error, read_body
from modelloop.serving.protocols.feedback import MAX_FEEDBACK_BYTES, decode_records


class Rows(Protocol):
    name = "rows"

    def routes(self, server: ServerContext) -> list[Route]:
        async def rows(request: Request) -> Response:
            try:
                if server.append_rows is None:
                    raise InvalidInput("this server takes no dataset rows",
                                       hint="start it with 'modelloop serve'")
                body = await read_body(request, MAX_FEEDBACK_BYTES)
                records = decode_records(body, request.headers.get("content-type", ""),
                                         "rows", "row", '{"column": value, ...}')
                out = await run_in_threadpool(server.append_rows,
                                              request.path_params["name"], records)
            except Exception as exc:
                return plain_error(exc)
            return JSONResponse(out)

        return [Route("/datasets/{name}/rows", rows, methods=["POST"])]
