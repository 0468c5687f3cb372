"""The HTTP side of a remote workspace: one ``httpx.Client`` (keep-alive, timeouts, TLS checked
against ``MODELLOOP_CA_BUNDLE`` when set), the API's JSON errors raised again as the same
:mod:`modelloop.errors` classes the local workspace raises, and files streamed both ways (an
upload reads its file from disk in chunks, a download writes the response to disk as it comes),
so memory stays bounded whatever the size.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from modelloop import errors

#: The API's prefix on the server.
PREFIX = "/api/v1"
#: Bytes read from disk (upload) or the socket (download) at a time.
CHUNK = 1 << 20
#: What a route that reports progress answers, when asked (``modelloop.api.progress``).
NDJSON = "application/x-ndjson"


class ServerError(Exception):
    """The server failed on a request (a 5xx): a bug or an outage there, not the caller's mistake."""


def raise_for_error(response: httpx.Response) -> None:
    """Raise the :mod:`modelloop.errors` class the server's error body names (its ``type``), or
    the one its status stands for; a 5xx without a known type is a :class:`ServerError`."""
    if response.is_success:
        return
    if not response.is_stream_consumed:
        response.read()
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):  # {"error": "Name", "message": ...} (ModelloopError.to_dict)
        error = {"type": error, **{k: v for k, v in body.items() if k != "error"}}
    if not isinstance(error, dict):
        detail = body.get("detail") if isinstance(body, dict) else None
        error = {"message": _detail_message(detail) or response.text.strip()[:500]
                 or response.reason_phrase}
    raise _error(response.status_code, error)


def _detail_message(detail: Any) -> str | None:
    """FastAPI's own validation body (``{"detail": [{"loc", "msg"}, …]}``) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return None


@functools.cache
def _named(name: str, base: type[errors.ModelloopError]) -> type[errors.ModelloopError]:
    """A user's error the server raised from a class outside :mod:`modelloop.errors` (a job that
    failed, a body too large): a class of the same name under the one its status stands for, so
    it prints and is caught as it would be locally."""
    return type(name, (base,), {"__module__": __name__})


def _status_class(status: int) -> type[errors.ModelloopError]:
    by_status = {401: "Unauthenticated", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                 422: "InvalidInput"}  # fmt: skip
    return getattr(errors, by_status.get(status, ""), errors.ModelloopError)


def _error(status: int, error: dict) -> Exception:
    message = str(error.get("message") or f"the server answered {status}")
    name = str(error.get("type") or "")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.ModelloopError)):
        if name in ("", "InternalError") and status >= 500:
            return ServerError(f"the modelloop API failed ({status}): {message}")
        cls = _named(name, _status_class(status)) if name.isidentifier() else _status_class(status)
    # made without the class's own constructor: some take keyword-only extras (BiasSpecError's
    # field), and what the server said is what the error carries
    exc = cls.__new__(cls)
    errors.ModelloopError.__init__(exc, message, hint=error.get("hint"),
                                   details=error.get("details"))
    for extra in ("field", "column", "retry_after"):
        if extra in error:
            setattr(exc, extra, error[extra])
    if "field" not in error:
        exc.field = None
    return exc


class Transport:
    """Requests to one modelloop API: ``base`` is the server's URL (``https://host:port``)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0,
                 verify: str | bool | None = None):  # fmt: skip
        if not url.startswith(("http://", "https://")):
            raise errors.ConfigError(f"MODELLOOP_URL {url!r} is not an http(s) URL",
                                     hint="e.g. MODELLOOP_URL=https://modelloop.example:8090")
        self.url = url.rstrip("/")
        if verify is None:
            verify = os.environ.get("MODELLOOP_CA_BUNDLE") or True
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.url + PREFIX, headers=headers, verify=verify,
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False,
        )

    def request(self, method: str, path: str, *, params: dict | None = None,
                json: Any = None, upload: Path | None = None,
                content_type: str = "application/octet-stream") -> httpx.Response:  # fmt: skip
        """The answer to one call, read, or the error it carries raised; ``upload`` streams that
        file as the request body (of ``content_type``)."""
        kwargs: dict[str, Any] = {"params": _query(params)}
        if upload is not None:
            kwargs["content"] = _chunks(upload)
            kwargs["headers"] = {"Content-Type": content_type,
                                 "Content-Length": str(upload.stat().st_size)}
        elif json is not None:
            kwargs["json"] = json
        response = self._send(method, path, **kwargs)
        raise_for_error(response)
        return response

    def download(self, method: str, path: str, dest: Path, *, params: dict | None = None,
                 json: Any = None) -> httpx.Headers:  # fmt: skip
        """Write the answer's body to ``dest`` as it arrives (a temporary name, then renamed);
        returns the answer's headers."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        request = self.http.build_request(method, path, params=_query(params), json=json)
        response = self._send_request(request, stream=True)
        try:
            raise_for_error(response)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return response.headers
        finally:
            response.close()

    def events(self, method: str, path: str, *, params: dict | None = None,
               json: Any = None) -> Iterator[dict]:  # fmt: skip
        """The answer of a route that reports progress (``modelloop.api.progress``), one object
        at a time as its lines arrive: ``{"progress": v}`` …, then ``{"result": v}``; an error
        line is raised as the error it names."""
        import json as json_

        request = self.http.build_request(method, path, params=_query(params), json=json,
                                          headers={"Accept": NDJSON})  # fmt: skip
        response = self._send_request(request, stream=True)
        try:
            raise_for_error(response)
            if not response.headers.get("content-type", "").startswith(NDJSON):
                response.read()  # the result alone (a server that does not stream)
                yield {"result": response.json() if response.content else None}
                return
            for line in response.iter_lines():
                if not line.strip():
                    continue  # a heartbeat
                event = json_.loads(line)
                if "error" in event:
                    raise _error(int(event.get("status") or 500), event["error"])
                yield event
        finally:
            response.close()

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self._send_request(self.http.build_request(method, path, **kwargs))

    def _send_request(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise errors.ConfigError(
                f"cannot reach the modelloop API at {self.url}: {exc}",
                hint="is the server running ('modelloop api serve')? check MODELLOOP_URL",
            ) from None

    def close(self) -> None:
        self.http.close()


def _query(params: dict | None) -> dict | None:
    """Query parameters as text; None values left out (the server's default applies)."""
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = [_text(v) for v in value] if isinstance(value, list | tuple) else _text(value)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def settings(environ: dict | None = None) -> tuple[str | None, str | None]:
    """(url, token) of the API the CLI talks to: ``MODELLOOP_URL`` (None: the local workspace)
    and ``MODELLOOP_TOKEN``, else the token ``modelloop login`` saved for that URL
    (``config.load_credentials``: owner-only, else a ConfigError)."""
    from modelloop.config import load_credentials

    env = os.environ if environ is None else environ
    url = env.get("MODELLOOP_URL") or None
    token = env.get("MODELLOOP_TOKEN") or None
    if url is None or token is not None:
        return url, token
    saved = load_credentials(env)
    if saved and saved["url"].rstrip("/") == url.rstrip("/"):
        token = saved["token"]
    return url, token
