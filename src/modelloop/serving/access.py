"""Which requests to an endpoint need an API token, checked before the protocol sees them.

An endpoint's ``auth`` option (``serving.spec.AUTH_MODES``) says: ``feedback`` (the default)
makes its feedback and events routes need a token of role operator, since labels feed model
quality monitoring and online learning; ``token`` also makes its inference routes need one (role
viewer); ``none`` opens everything (a local demo). ``/invocations`` is checked as the endpoint it
serves. What the server says about itself and every endpoint (``GET /endpoints``, ``/workers``,
``/metrics``) needs a viewer's token as soon as one endpoint it serves has ``auth = "token"``;
health checks and server metadata never do. A stream-fed dataset's rows
(``/datasets/{name}/rows``) always need an operator's token: they are data a model will train on. Tokens are verified by ``access.Tokens``: a cache
look-up, or (a token's first use in this process, then every few seconds) a store read and once
an argon2 hash, in a thread so the event loop never waits for them.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelloop.access.tokens import bearer_token, require
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error

#: Routes that name an endpoint (``{name}``), checked by the endpoint's ``auth``.
ENDPOINT_PATHS = ("/endpoints/{name}/", "/mlflow/{name}/", "/v2/models/{name}")
#: Routes that write a dataset (a stream-fed dataset's rows): an operator's, as the control
#: plane's ``datasets.append_rows`` is; no endpoint's ``auth`` opens them.
DATASET_PATHS = ("/datasets/{name}/rows",)
#: Routes about the server and all its endpoints.
SERVER_PATHS = ("/endpoints", "/workers", "/metrics")
#: (endpoint auth mode, protocol access) -> the least role, or None: no token needed.
NEEDS = {("token", "inference"): "viewer", ("token", "labels"): "operator",
         ("feedback", "labels"): "operator"}  # fmt: skip


def guarded(route: Route, protocol: Protocol, server: ServerContext) -> Route:
    """``route`` checking the caller's token when its endpoint's ``auth`` asks for one."""
    if not isinstance(route, Route) or server.tokens is None:
        return route
    if route.path in SERVER_PATHS:
        def role_for(request: Request) -> str | None:
            runtimes = server.plane.runtimes.values()
            return "viewer" if any(rt.options.get("auth") == "token" for rt in runtimes) else None
    elif route.path in DATASET_PATHS:
        def role_for(request: Request) -> str | None:
            return "operator"
    elif route.path.startswith(ENDPOINT_PATHS) or route.path == "/invocations":
        def role_for(request: Request) -> str | None:
            name = request.path_params.get("name") or _default_endpoint(server)
            rt = server.plane.runtimes.get(name) if name else None
            return NEEDS.get((rt.options.get("auth", "feedback"), protocol.access)) if rt else None
    else:
        return route
    handler = route.endpoint

    async def checked(request: Request) -> Response:
        role = role_for(request)
        if role is not None:
            try:
                token = bearer_token(request.headers.get("authorization"))
                principal = server.tokens.cached(token) or await run_in_threadpool(
                    server.tokens.verify, token)
                require(principal, role)
            except Exception as exc:  # 401 / 403 (429: too many checks), modelloop's JSON error
                response = plain_error(exc)
                if getattr(exc, "status", None) == 401:
                    response.headers["WWW-Authenticate"] = 'Bearer realm="modelloop"'
                if getattr(exc, "retry_after", None):
                    response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
                return response
        return await handler(request)

    return Route(route.path, checked, methods=route.methods, name=route.name)


def _default_endpoint(server: ServerContext) -> str | None:
    if server.default_endpoint:
        return server.default_endpoint
    names = list(server.plane.runtimes)
    return names[0] if len(names) == 1 else None
