"""What this server serves and how it runs: ``GET /endpoints`` (each endpoint's revision and
variants) and ``GET /workers`` (its worker processes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelloop.serving.protocols.base import Protocol, ServerContext


class Status(Protocol):
    name = "status"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def endpoints(request: Request) -> Response:
            return JSONResponse({
                name: {"revision": rt.revision,
                       "variants": {v.name: {"model": v.model_ref, "role": v.role,
                                             "weight": v.weight}
                                    for v in rt.variants.values()}}
                for name, rt in sorted(plane.runtimes.items())})

        async def workers(request: Request) -> Response:
            return JSONResponse(server.workers_report())

        return [Route("/endpoints", endpoints, methods=["GET"]),
                Route("/workers", workers, methods=["GET"])]
