"""Which requests to an endpoint need an API token, checked before the protocol sees them.

An endpoint's ``auth`` option (``serving.spec.AUTH_MODES``) says: ``feedback`` (the default)
makes its feedback and events routes need a token of role operator, since labels feed model
quality monitoring and online learning; ``token`` also makes its inference routes need one (role
viewer); ``none`` opens everything (a local demo). Routes that name no endpoint (health, server
metadata, ``/metrics``) are not checked; ``/invocations`` is checked as the endpoint it serves.
Tokens are verified by ``access.Tokens.verify``: one argon2 hash per token per process, then a
cache look-up.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelloop.access.tokens import bearer_token, require
from modelloop.serving.protocols.base import Protocol, ServerContext, plain_error

#: Routes that name an endpoint (``{name}``); other routes with a ``{name}`` (a stream-fed
#: dataset's ``/datasets/{name}/rows``) are not endpoints' and are not checked here.
ENDPOINT_PATHS = ("/endpoints/{name}/", "/mlflow/{name}/", "/v2/models/{name}")
#: (endpoint auth mode, protocol access) -> the least role, or None: no token needed.
NEEDS = {("token", "inference"): "viewer", ("token", "labels"): "operator",
         ("feedback", "labels"): "operator"}  # fmt: skip


def guarded(route: Route, protocol: Protocol, server: ServerContext) -> Route:
    """``route`` checking the caller's token when its endpoint's ``auth`` asks for one."""
    if not isinstance(route, Route) or server.verify_token is None:
        return route
    if not (route.path.startswith(ENDPOINT_PATHS) or route.path == "/invocations"):
        return route
    handler = route.endpoint

    async def checked(request: Request) -> Response:
        name = request.path_params.get("name") or _default_endpoint(server)
        rt = server.plane.runtimes.get(name) if name else None
        role = NEEDS.get((rt.options.get("auth", "feedback"), protocol.access)) if rt else None
        if role is not None:
            try:
                require(_principal(server, request), role)
            except Exception as exc:  # 401 / 403, as modelloop's JSON error
                response = plain_error(exc)
                if getattr(exc, "status", None) == 401:
                    response.headers["WWW-Authenticate"] = 'Bearer realm="modelloop"'
                return response
        return await handler(request)

    return Route(route.path, checked, methods=route.methods, name=route.name)


def _principal(server: ServerContext, request: Request):
    return server.verify_token(bearer_token(request.headers.get("authorization")))


def _default_endpoint(server: ServerContext) -> str | None:
    if server.default_endpoint:
        return server.default_endpoint
    names = list(server.plane.runtimes)
    return names[0] if len(names) == 1 else None
