"""``GET /metrics``: each endpoint/variant's counters and latency histograms, and the capture
writer's record counts, in Prometheus' text format."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelloop.serving.protocols.base import Protocol, ServerContext
from modelloop.telemetry.metrics import prometheus_text


class Prometheus(Protocol):
    name = "prometheus"

    def routes(self, server: ServerContext) -> list[Route]:
        plane = server.plane

        async def metrics(request: Request) -> Response:
            rows = plane.stats.snapshots()
            cap = plane.capture.stats()
            text = prometheus_text(rows)
            text += ("# HELP modelloop_capture_records_total Capture records by outcome.\n"
                     "# TYPE modelloop_capture_records_total counter\n")
            for key in ("written", "dropped", "failed"):
                text += f'modelloop_capture_records_total{{outcome="{key}"}} {cap[key]}\n'
            return Response(text, media_type="text/plain; version=0.0.4")

        return [Route("/metrics", metrics, methods=["GET"])]
