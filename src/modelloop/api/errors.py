"""Errors as JSON: ``{"error": {"type", "message", "hint", "field"?, "details"?}}`` with a 4xx
for every mistake a caller can make, so no user error is a 500 and the remote client raises the
same :mod:`modelloop.errors` class the local call would have raised (``type`` is its name)."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from modelloop.errors import ModelloopError

log = logging.getLogger("modelloop.api")

_HTTP_TYPES = {401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               413: "TooLarge", 429: "RateLimited"}  # fmt: skip


def error_body(type_: str, message: str, *, hint: str | None = None, field: str | None = None,
               details: list[str] | None = None) -> dict:  # fmt: skip
    error: dict = {"type": type_, "message": message, "hint": hint}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, body: dict, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def from_modelloop(exc: ModelloopError) -> JSONResponse:
    status, body = describe(exc)
    retry_after = body["error"].get("retry_after")
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return error_response(status, body, headers)


def describe(exc: BaseException) -> tuple[int, dict]:
    """(status, error body) of ``exc``: a :class:`ModelloopError` by its own status, anything
    else a 500 (a bug: logged)."""
    if not isinstance(exc, ModelloopError):
        log.error("a call failed", exc_info=exc)
        return 500, error_body("InternalError", f"{type(exc).__name__}: {exc}",
                               hint="a bug in modelloop: please report it")  # fmt: skip
    body = error_body(type(exc).__name__, exc.message, hint=exc.hint,
                      field=getattr(exc, "field", None), details=list(exc.details) or None)  # fmt: skip
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        body["error"]["retry_after"] = retry_after
    return (exc.status if 400 <= exc.status < 600 else 400), body


def _field(loc: tuple) -> str:
    """``("body", "seed")`` -> ``seed``; ``("query", "limit")`` -> ``limit``; a JSON position stays."""
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header")
        else [str(p) for p in loc]
    )
    return ".".join(parts) or str(loc[0] if loc else "body")


def from_validation(exc: RequestValidationError) -> JSONResponse:
    problems = []
    first_field = None
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            where = loc[-1] if len(loc) > 1 else "?"
            problems.append(("body", f"the body is not valid JSON (at character {where})"))
            continue
        field = _field(loc)
        if err.get("type") == "extra_forbidden":
            msg = f"{field}: unknown field"
        elif err.get("type") == "missing":
            msg = f"{field}: required"
        else:
            msg = f"{field}: {err.get('msg', 'invalid')}"
        problems.append((field, msg))
    if not problems:
        problems = [("body", "invalid request")]
    first_field = problems[0][0]
    body = error_body("InvalidInput", problems[0][1], field=first_field,
                      details=[m for _, m in problems[1:]] or None)  # fmt: skip
    return error_response(422, body)


def _allowed(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route.methods)
    return sorted(methods)


def _relaxed(app) -> list[tuple[re.Pattern, tuple[str, ...]]]:
    """Each route's path with its parameters matching anything, ``/`` included, so a path that
    no route matches can still be traced to the parameter that broke it (``..%2Fx`` arrives
    decoded as ``../x``). Built once per app."""
    cached = getattr(app.state, "relaxed_routes", None)
    if cached is None:
        cached = []
        for route in app.routes:
            path = getattr(route, "path", "")
            names = tuple(re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path))
            if names:
                parts = re.split(r"\{[^}]+\}", path)
                rx = "".join(re.escape(part) + (f"(?P<{n}>.+?)" if i < len(names) else "")
                             for i, (part, n) in enumerate(zip(parts, [*names, None], strict=True)))  # fmt: skip
                cached.append((re.compile(rx), names))
        app.state.relaxed_routes = cached
    return cached


def _no_route(request: Request) -> JSONResponse:
    """404 naming the path; or, when a path parameter holding ``/`` is why no route matched,
    the InvalidInput a bad field gets (422 naming the parameter)."""
    path = request.url.path
    for rx, names in _relaxed(request.app):
        match = rx.fullmatch(path)
        if match:
            bad = next((n for n in names if "/" in match.group(n)), None)
            if bad:
                body = error_body("InvalidInput", f"{bad}: must not contain '/' (got {match.group(bad)!r})",
                                  hint="a name or value in the path is one segment: no '/' and no '..'",
                                  field=bad)  # fmt: skip
                return error_response(422, body)
    body = error_body("NotFound", f"no route {request.method} {path}",
                      hint="the routes are listed in /api/v1/openapi.json")  # fmt: skip
    return error_response(404, body)


def install(app: FastAPI) -> None:
    """Map every error to JSON on ``app``."""

    @app.exception_handler(ModelloopError)
    async def _modelloop(request: Request, exc: ModelloopError):
        return from_modelloop(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return from_validation(exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if exc.status_code == 404 and exc.detail == "Not Found":  # the router's: no route matched
            return _no_route(request)
        type_ = _HTTP_TYPES.get(exc.status_code, "HTTPError")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 405:  # every method of the path, not only the first route's
            exc.headers = {"Allow": ", ".join(_allowed(request))}
        return error_response(
            exc.status_code, error_body(type_, message), getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, error_body("InternalError", f"{type(exc).__name__}: {exc}",
                                              hint="a bug in modelloop: please report it"))  # fmt: skip
