"""What every protocol adapter is built from: the :class:`Protocol` base, the
:class:`ServerContext` it is mounted on, the registry, and the request-body reader and error
shape the adapters share.

A protocol is a set of Starlette routes that turn requests into a
:class:`~modelloop.serving.dataplane.payload.Payload`, call ``DataPlane.infer`` and shape answers and
errors the way the protocol's clients expect them (KServe's model server splits its REST
endpoints from its data plane the same way). ``create_app`` mounts every registered protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from modelloop.errors import InvalidInput, ModelloopError
from modelloop.serving.dataplane.payload import PayloadTooLarge

if TYPE_CHECKING:
    from modelloop.serving.dataplane.plane import DataPlane


@dataclass
class ServerContext:
    """What one server process offers its protocols: the data plane, the endpoint
    ``/invocations`` serves (None: the only one), where feedback labels go, the report of
    the server's worker processes, and where an online endpoint's labelled events go."""

    plane: DataPlane
    default_endpoint: str | None
    add_labels: Callable[..., dict]
    workers_report: Callable[[], dict]
    add_events: Callable[..., dict] | None = None
    learn_feedback: Callable[..., dict] | None = None
    append_rows: Callable[..., dict] | None = None  # rows for a stream-fed dataset
    #: the workspace's API tokens (``access.Tokens``: ``cached``, ``verify``); None: no checks
    tokens: object | None = None


class Protocol:
    """One protocol adapter: a ``name`` and the routes it adds to the app."""

    name: str = ""
    #: What its routes that name an endpoint do, for the endpoint's ``auth`` option:
    #: "inference" (a token with role viewer when ``auth`` is ``token``) or "labels" (feedback
    #: and events: role operator unless ``auth`` is ``none``). See ``serving.access``.
    access: str = "inference"

    def routes(self, server: ServerContext) -> list[BaseRoute]:
        raise NotImplementedError


#: name -> protocol, in registration order.
PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    """Serve ``protocol`` from every app created afterwards; a second protocol of the same name
    replaces the first."""
    if not protocol.name:
        raise ValueError(f"{type(protocol).__name__} needs a name")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def registered() -> list[Protocol]:
    """The registered protocols, in registration order."""
    return list(PROTOCOLS.values())


# -- shared by the adapters ----------------------------------------------------------------------
class BodyTimedOut(ModelloopError):
    status = 408


async def read_body(request: Request, limit: int, timeout: float = 60.0) -> bytes:
    """The body, counted as it streams in: a chunked body (no Content-Length) stops at the limit
    instead of being buffered whole first, and a body trickling in slower than ``timeout``
    seconds is a 408 (headers have their own deadline in ``serving.connections``)."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, limit)
    except TimeoutError:
        raise BodyTimedOut(f"the request body did not arrive within {timeout:g} s",
                           hint="send the whole body at once, or raise the endpoint's "
                                "timeout_seconds option") from None


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise InvalidInput(f"Content-Length {length!r} is not a number of bytes")
    if length and int(length) > limit:
        raise PayloadTooLarge(
            f"request body of {int(length)} bytes is over the {limit} byte limit",
            hint="send fewer rows per request, or raise the endpoint's max_payload_mb option",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit} byte limit",
                                  hint="send fewer rows per request, or raise the endpoint's "
                                       "max_payload_mb option")
        chunks.append(chunk)
    return b"".join(chunks)


def error_parts(exc: Exception) -> tuple[int, str, str | None]:
    """(status, message, hint) of any exception: a :class:`ModelloopError` says its own, anything
    else is a 500 naming the exception."""
    if isinstance(exc, ModelloopError):
        return exc.status, exc.message, exc.hint
    return 500, f"internal error: {type(exc).__name__}: {exc}", None


def plain_error(exc: Exception) -> Response:
    """modelloop's JSON error body (MLflow's shape): ``error_code``, ``message``, ``hint``."""
    status, message, hint = error_parts(exc)
    code = {404: "RESOURCE_DOES_NOT_EXIST", 424: "MODEL_ERROR"}.get(status) or (
        "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    return JSONResponse({"error_code": code, "message": message, "hint": hint}, status)
