"""The serving HTTP app: the registered protocol adapters mounted on the one data plane.

Each protocol (``serving/protocols/``: SageMaker runtime, MLflow scoring, Open Inference Protocol
v2, feedback, Prometheus metrics, server status; see the README's serving section) turns its
requests into a :class:`~modelloop.serving.dataplane.payload.Payload`, calls ``DataPlane.infer`` and
shapes answers and errors the way its clients expect them. Bodies are counted as they arrive
(413 past ``max_payload_mb``); header limits are in ``serving.connections``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from modelloop.serving.dataplane.plane import DataPlane
from modelloop.serving.protocols import ServerContext, registered


def create_app(plane: DataPlane, *, add_labels: Callable[..., dict],
               default_endpoint: str | None = None,
               workers_report: Callable[[], dict] | None = None,
               add_events: Callable[..., dict] | None = None,
               learn_feedback: Callable[..., dict] | None = None,
               append_rows: Callable[..., dict] | None = None,
               tokens=None) -> Starlette:
    """The app of one server process: every registered protocol on ``plane``, which starts and
    stops with the app. ``add_labels`` stores feedback; ``workers_report`` answers
    ``GET /workers`` (None: a single-process server); ``add_events`` takes an online
    endpoint's labelled events and ``learn_feedback`` turns its feedback into them;
    ``append_rows`` buffers rows for a stream-fed dataset (``POST /datasets/NAME/rows``);
    ``tokens`` checks the API tokens endpoints ask for (``serving.access``; None: no checks)."""
    from modelloop.serving.access import guarded
    from modelloop.serving.workers import single_report

    server = ServerContext(plane=plane, default_endpoint=default_endpoint, add_labels=add_labels,
                           workers_report=workers_report or single_report,
                           add_events=add_events, learn_feedback=learn_feedback,
                           append_rows=append_rows, tokens=tokens)
    routes = [guarded(route, protocol, server)
              for protocol in registered() for route in protocol.routes(server)]

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


def run(app_factory: Callable, *, host: str = "127.0.0.1", port: int = 8080,
        log_level: str = "warning", min_workers: int = 1, max_workers: int = 1, sock=None,
        insecure: bool = False, **scaling) -> None:
    """Serve ``app_factory(board)``'s app until interrupted (uvicorn with httptools, uvloop where
    installed, no access log).

    One process by default (``board`` None); with ``max_workers`` > 1, worker processes on one
    shared socket, a fixed number (``min_workers == max_workers``) or autoscaled (see
    ``serving.workers``): then each worker calls ``app_factory`` with the worker board after it
    starts, so the factory must pickle (a module-level function or a partial of one).
    ``sock`` is a listening socket from ``serving.workers.bind`` (bound here if not given).
    The options are checked as ``modelloop serve`` checks them (a host other than loopback
    needs ``insecure``).
    """
    import uvicorn

    from modelloop.serving.connections import uvicorn_options
    from modelloop.serving.spec import check_serve
    from modelloop.serving.workers import bind, freeze_heap, run_workers

    check_serve(host=host, port=port, insecure=insecure, min_workers=min_workers,
                max_workers=max_workers,
                **{k: scaling[k] for k in ("target_inflight", "scale_out_cooldown",
                                           "scale_in_cooldown") if k in scaling})
    sock = sock or bind(host, port)
    if max_workers > 1:
        run_workers(app_factory, host=host, port=port, log_level=log_level,
                    min_workers=min_workers, max_workers=max_workers, sock=sock, **scaling)
        return

    config = uvicorn.Config(app_factory(None), host=host, port=port, log_level=log_level,
                            lifespan="on", **uvicorn_options())
    freeze_heap()
    uvicorn.Server(config).run(sockets=[sock])
