"""The control-plane API: one FastAPI route per row of the operations table, under ``/api/v1``.

Each route is thin, like a CLI command: authenticate the caller and check the row's role, parse
(the method's signature made a pydantic model), call ``ws.<service>.<method>``, render the
result; every mutating call is recorded in the audit log with its outcome. Nothing here knows a
service: a façade method becomes a route by a row in ``modelloop/remote/operations.py``.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from modelloop import __version__
from modelloop.api import auth as _auth
from modelloop.api import docs, errors, progress
from modelloop.api.limits import BodyLimit, Threads, TokenBuckets
from modelloop.api.params import Plan
from modelloop.api.settings import ApiSettings
from modelloop.api.streams import (
    arrow_stream,
    receive_upload,
    render,
    scratch,
    tar_response,
    upload_argument,
)
from modelloop.config import acting_as
from modelloop.errors import InvalidInput
from modelloop.remote.codec import encode
from modelloop.remote.operations import OPERATIONS, Operation
from modelloop.remote.signatures import SERVER_FILLED, service_class, signature

PREFIX = "/api/v1"
_bearer = HTTPBearer(auto_error=False, description="an API token: modelloop token create")


class Api:
    """What every route shares: the workspace, the settings, the auth module, the limits."""

    def __init__(self, ws, settings: ApiSettings, auth=None):
        self.ws, self.settings = ws, settings
        self.auth = auth or _auth
        self.buckets = TokenBuckets(settings.rate_limit, settings.rate_burst)
        self.anonymous = self.auth.local_principal() if settings.auth == "none" else None

    def principal(self, op: Operation, query: frozenset[str] = frozenset()) -> Callable:
        """The dependency of ``op``'s route: who calls, rate-limited, holding ``op.role``;
        then a query parameter outside ``query`` is refused (422), as an unknown body field is."""
        auth, errors_ = self.auth, _auth

        def caller(request: Request,
                   _: HTTPAuthorizationCredentials | None = Security(_bearer)):  # fmt: skip
            header = request.headers.get("authorization")
            try:
                principal = auth.authenticate(self.ws, header, anonymous=self.anonymous)
            except errors_.Unauthenticated:
                host = request.client.host if request.client else "?"
                self.buckets.check(f"unauthenticated:{host}")  # guessing costs the guesser
                raise
            self.buckets.check(f"token:{principal.token_id or principal.name}")
            try:
                auth.require(principal, op.role)
            except errors_.Forbidden as exc:
                if op.mutating:
                    self.audit(op, principal, {}, _subject(op, request.path_params), exc)
                raise
            unknown = sorted(set(request.query_params) - query)
            if unknown:
                exc = InvalidInput(f"{unknown[0]}: unknown query parameter",
                                   hint=f"known: {', '.join(sorted(query)) or 'none'}")  # fmt: skip
                exc.field, exc.status = unknown[0], 422
                raise exc
            return principal

        return caller

    def audit(self, op: Operation, principal, arguments: dict, subject: str | None,
              error: BaseException | None) -> None:  # fmt: skip
        self.auth.audit(self.ws, principal, op.name, arguments=arguments, subject=subject,
                        error=error, source="api")  # fmt: skip

    def method(self, op: Operation, name: str | None = None) -> Callable:
        """``ws.<service>.<name or op.method>``."""
        target = self.ws
        if op.service != "workspace":
            for part in op.service.split("."):  # "monitoring.baselines": ws.monitoring.baselines
                target = getattr(target, part)
        return getattr(target, name or op.method)

    def call(self, op: Operation, principal, kwargs: dict, subject: str | None,
             shown: dict | None = None) -> Any:  # fmt: skip
        """``ws.<service>.<method>(**kwargs)``; a mutating call is audited with its outcome
        and its arguments (``shown`` replacing some: an upload by its file's name)."""
        method = self.method(op)
        if not op.mutating:
            return method(**kwargs)
        shown = {**_shown(kwargs), **(shown or {})}
        try:
            # every history record the call writes (also those without an actor parameter:
            # trusted-by, forced-by, created-by) names the caller, not the server's OS user
            with acting_as(principal.name):
                result = method(**kwargs)
        except BaseException as exc:
            self.audit(op, principal, shown, subject, exc)
            raise
        self.audit(op, principal, shown, subject, None)
        return result


def _in_query(p: inspect.Parameter) -> bool:
    from fastapi.params import Query

    return isinstance(p.default, Query)


def _shown(kwargs: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()
            if k not in SERVER_FILLED and not callable(v)}  # fmt: skip


def _subject(op: Operation, values: dict) -> str | None:
    names = op.path_params
    return "/".join(str(values[n]) for n in names if n in values) or None


def _page(value: Any, page: dict, method_limit: bool) -> tuple[Any, dict]:
    if not page or not isinstance(value, list):
        return value, {}
    limit, offset = page["limit"], page["offset"]
    items = value[offset : offset + limit]
    headers = {}
    if not method_limit:
        headers["X-Total-Count"] = str(len(value))
    return items, headers


def _route(api: Api, op: Operation) -> dict:
    """The keyword arguments of ``app.add_api_route`` for ``op``."""
    plan = Plan(op, api.settings.page_max)
    query = frozenset(p.name for p in plan.fastapi if _in_query(p))
    hint = signature(op)[1]["return"]
    kw = inspect.Parameter.KEYWORD_ONLY
    head = [
        inspect.Parameter(
            "principal__", kw, annotation=Any, default=Depends(api.principal(op, query))
        )
    ]
    if op.stream == "upload":
        head.append(inspect.Parameter("request__", kw, annotation=Request))

        async def endpoint(**values):
            principal, request = values.pop("principal__"), values.pop("request__")
            filename = values.get("filename")
            kwargs, _ = plan.arguments(values, principal.name)
            subject, shown = _subject(op, kwargs), {op.upload: filename or "(upload)"}
            folder = scratch(api.ws)
            try:
                try:
                    files = await receive_upload(request, folder, filename,
                                                 api.settings.max_upload_bytes)  # fmt: skip
                    kwargs[op.upload] = upload_argument(op.upload, files, folder)
                except Exception as exc:  # refused before the call: audited all the same
                    args = {**_shown(kwargs), **shown}
                    await run_in_threadpool(api.audit, op, principal, args, subject, exc)
                    raise
                result = await run_in_threadpool(api.call, op, principal, kwargs, subject, shown)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return render(result)

    elif op.stream == "download":

        def endpoint(**values):
            principal = values.pop("principal__")
            kwargs, _ = plan.arguments(values, principal.name)
            folder = scratch(api.ws).resolve()
            try:
                kwargs["dest"] = folder / "out"
                result = api.call(op, principal, kwargs, _subject(op, kwargs))
                return tar_response(folder, folder / "out", encode(result), folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise

    elif op.progress:
        head.append(inspect.Parameter("request__", kw, annotation=Request))

        def endpoint(**values):
            principal, request = values.pop("principal__"), values.pop("request__")
            kwargs, _ = plan.arguments(values, principal.name)
            subject = _subject(op, kwargs)
            if not progress.wanted(request):
                return render(api.call(op, principal, kwargs, subject))
            return progress.stream(lambda report: api.call(
                op, principal, {**kwargs, op.progress: report}, subject))

    else:

        def endpoint(**values):
            principal = values.pop("principal__")
            kwargs, page = plan.arguments(values, principal.name)
            if op.batches:  # a table sent batch by batch, never whole in memory
                return arrow_stream(api.method(op, op.batches)(**kwargs),
                                    lambda: api.call(op, principal, kwargs, None))  # fmt: skip
            result = api.call(op, principal, kwargs, _subject(op, kwargs))
            result, headers = _page(result, page, plan.method_limit)
            return render(result, headers)

    endpoint.__signature__ = inspect.Signature(head + plan.fastapi)
    endpoint.__name__ = op.name.replace(".", "_")
    endpoint.__doc__ = _doc(op)
    route = {"path": PREFIX + op.path, "endpoint": endpoint, "methods": [op.http],
             "operation_id": op.name, "tags": [op.service], "summary": op.name,
             "responses": _responses(op), "openapi_extra": {"x-role": op.role}}  # fmt: skip
    if op.stream == "upload":
        route["openapi_extra"]["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}  # fmt: skip
    if op.stream is None:
        route["response_model"] = _response_model(hint)
    return route


def _response_model(hint):
    import pyarrow as pa
    from fastapi.utils import create_model_field

    if hint in (None, type(None), bytes, pa.Table):
        return None
    try:
        create_model_field("probe", hint, mode="serialization")
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe: undocumented body
        return None
    return hint


def _doc(op: Operation) -> str:
    text = inspect.getdoc(getattr(service_class(op.service), op.method)) or ""
    return f"`ws.{op.name}` (least role: {op.role}).\n\n{text}"


class _ErrorDetail(BaseModel):
    type: str
    message: str
    hint: str | None = None
    field: str | None = None
    details: list[str] | None = None
    retry_after: float | None = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"type", "message", "hint", "field"?, ...}}``."""

    error: _ErrorDetail


_ERRORS = {400: "invalid input (its meaning)", 401: "no valid token", 404: "no such thing",
           409: "a conflict with the current state", 413: "the body is too large",
           422: "invalid input (its form)", 429: "rate limited: see Retry-After"}  # fmt: skip


def _responses(op: Operation) -> dict:
    out = {status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()}
    out[403] = {"model": ErrorBody, "description": f"needs role {op.role}"}
    if op.progress:
        out[200] = {"description": f"the result; with `Accept: {progress.NDJSON}`, the reports "
                    "of the method's progress as they happen, one JSON object a line "
                    '(`{"progress": ...}`), then `{"result": ...}` or `{"error": ..., "status": '
                    '...}`', "content": {progress.NDJSON: {"schema": {"type": "string"}}}}
    if op.stream == "download":
        out[200] = {"description": "a tar of the files",
                    "content": {"application/x-tar": {"schema": {"type": "string",
                                                                 "format": "binary"}}}}  # fmt: skip
    return out


def create_app(ws, settings: ApiSettings | None = None, *, auth=None) -> FastAPI:
    """The API of workspace ``ws`` (the caller owns and closes it)."""
    settings = settings or ApiSettings.from_config(ws.config)
    api = Api(ws, settings, auth)
    app = FastAPI(title="modelloop control plane", version=__version__,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None,
                  description="Every façade operation over HTTP; send `Authorization: Bearer "
                              "<token>` (modelloop token create).")  # fmt: skip
    app.state.api = api
    errors.install(app)
    for op in sorted(OPERATIONS, key=lambda o: o.path.count("{")):  # literal paths match first
        app.add_api_route(**_route(api, op))
    docs.install(app, PREFIX)
    uploads = [(op.http, _pattern(PREFIX + op.path)) for op in OPERATIONS if op.stream == "upload"]
    app.add_middleware(Threads, total=settings.threads)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       is_upload=lambda m, p: any(m == h and r.fullmatch(p) for h, r in uploads))  # fmt: skip
    return app


def _pattern(path: str):
    import re

    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)))
