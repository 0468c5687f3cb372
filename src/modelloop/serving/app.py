"""The serving HTTP app: the registered protocol adapters mounted on the one data plane.

Each protocol (``serving/protocols/``: SageMaker runtime, MLflow scoring, Open Inference Protocol
v2, feedback, Prometheus metrics, server status; see the README's serving section) turns its
requests into a :class:`~modelloop.serving.dataplane.Payload`, calls ``DataPlane.infer`` and
shapes answers and errors the way its clients expect them. Bodies are counted as they arrive
(413 past ``max_payload_mb``); header limits are in ``serving.connections``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from starlette.applications import Starlette

from modelloop.serving.dataplane import DataPlane
from modelloop.serving.protocols import ServerContext, registered


def create_app(ws, *, default_endpoint: str | None = None, poll_seconds: float = 0.5,
               board=None, metrics_seconds: float = 10.0) -> Starlette:
    """The app of one server process; ``board`` is the worker board when several run;
    ``metrics_seconds`` how often endpoint metric series are written."""
    from modelloop.serving.workers import single_report

    plane = DataPlane(ws, poll_seconds=poll_seconds, metrics_seconds=metrics_seconds)
    server = ServerContext(
        plane=plane, default_endpoint=default_endpoint,
        add_labels=ws.monitoring.add_label_records,
        workers_report=board.report if board is not None else single_report)
    routes = [route for protocol in registered() for route in protocol.routes(server)]

    @asynccontextmanager
    async def lifespan(app):
        plane.start()
        try:
            yield
        finally:
            plane.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.plane = plane
    return app


def run(ws, *, host: str = "127.0.0.1", port: int = 8080, endpoint: str | None = None,
        log_level: str = "warning", min_workers: int = 1, max_workers: int = 1,
        metrics_seconds: float = 10.0, sock=None, insecure: bool = False, **scaling) -> None:
    """Serve until interrupted (uvicorn with httptools, uvloop where installed, no access log).

    One process by default; with ``max_workers`` > 1, worker processes on one shared socket,
    a fixed number (``min_workers == max_workers``) or autoscaled (see ``serving.workers``).
    ``sock`` is a listening socket from ``serving.workers.bind`` (bound here if not given).
    The options are checked as ``modelloop serve`` checks them (a host other than loopback
    needs ``insecure``).
    """
    import uvicorn

    from modelloop.serving.connections import uvicorn_options
    from modelloop.serving.spec import check_serve
    from modelloop.serving.workers import bind, run_workers

    check_serve(host=host, port=port, insecure=insecure, min_workers=min_workers,
                max_workers=max_workers, metrics_seconds=metrics_seconds,
                **{k: scaling[k] for k in ("target_inflight", "scale_out_cooldown",
                                           "scale_in_cooldown") if k in scaling})
    sock = sock or bind(host, port)
    if max_workers > 1:
        run_workers(ws, host=host, port=port, endpoint=endpoint, log_level=log_level,
                    min_workers=min_workers, max_workers=max_workers,
                    metrics_seconds=metrics_seconds, sock=sock, **scaling)
        return

    app = create_app(ws, default_endpoint=endpoint, metrics_seconds=metrics_seconds)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                            **uvicorn_options())
    uvicorn.Server(config).run(sockets=[sock])
