"""HTTP connection guards for ``modelloop serve``: a cap on request-header size and a deadline
for receiving the headers.

uvicorn's httptools protocol has neither (h11's ``h11_max_incomplete_event_size`` only applies to
the slower h11 parser), so a client could send a 1 MB header, or hold connections open by
sending headers a byte at a time (slowloris). This subclass adds both and keeps httptools' speed;
:func:`uvicorn_options` selects it. Limits come from the environment so every
worker process reads the same ones:

- ``MODELLOOP_SERVE_MAX_HEADER_KB`` (64): request line plus headers; over it the answer is 431;
- ``MODELLOOP_SERVE_HEADER_TIMEOUT`` (10 s): from the connection (or the end of the previous
  response) to the end of the headers; past it the answer is 408 and the connection closes.
"""

from __future__ import annotations

import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: How long a connection answered before its request's body arrived still reads (and drops) it.
LINGER_SECONDS = 2.0
#: How long an idle keep-alive connection stays open (longer than the proxies' idle timeouts).
KEEP_ALIVE_SECONDS = 75


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' protocol with a header-size cap and a header deadline."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_header_bytes = int(_env_number("MODELLOOP_SERVE_MAX_HEADER_KB", 64) * 1024)
        self.header_timeout = _env_number("MODELLOOP_SERVE_HEADER_TIMEOUT", 10.0)
        self._header_bytes = 0  # request line and headers parsed so far
        self._pending = 0  # bytes received while the headers are still incomplete
        self._in_headers = True
        self._too_large = False
        self._body_complete = True  # the current request's body was all received
        self._lingering = None  # the timer that ends a connection answered before its body
        self._header_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._answer(408, "Request Timeout", "request headers were not received in time")

    def _answer(self, status: int, reason: str, message: str) -> None:
        body = message.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        super().data_received(data)
        # httptools buffers a header until it is complete, so count what arrives meanwhile
        if self._in_headers and not self.transport.is_closing():
            self._pending += len(data)
            if self._pending > self.max_header_bytes:
                self._disarm()
                self._too_large = True
                self.send_400_response("")

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._in_headers = True
        if self._header_timer is None:  # a pipelined or keep-alive request: a new deadline
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_headers = False
        self._body_complete = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._pending = 0
        self._body_complete = True
        if self._lingering is not None:  # the body of a request answered early has ended
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._body_complete and not self.transport.is_closing():
            self._linger()
        # else the keep-alive timer now guards the idle connection; the header deadline starts
        # again at the next request's first byte (on_message_begin)

    def _linger(self) -> None:
        """End a connection answered before its request's body arrived (413 over the limit, 408
        too slow): no next request can follow that body. Closing at once would reset a client
        still sending, which may then never read the answer; so, as web servers do (nginx's
        lingering close), the answer is followed by end-of-file, what still arrives is read
        and dropped, and the connection closes once the body ends or after
        :data:`LINGER_SECONDS`, instead of idling until the keep-alive timeout."""
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._lingering = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            self._too_large = True
            raise HeadersTooLarge  # httptools stops parsing; uvicorn calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._disarm()
            self._answer(431, "Request Header Fields Too Large",
                         f"request headers are over {self.max_header_bytes // 1024} KB")
            return
        super().send_400_response(msg)


def uvicorn_options() -> dict:
    """The uvicorn settings every server process shares: the guarded httptools protocol, no
    access log, and uvloop where it is installed (it sets TCP_NODELAY on accepted sockets, which
    the asyncio loop does not do for a socket bound by the parent: uvicorn #3149, +40 ms per
    keep-alive request), else the asyncio loop.

    Idle keep-alive connections are kept 75 s, not uvicorn's 5: a proxy or load balancer in
    front (AWS ALB: 60 s idle by default) reuses a connection the server may be closing at that
    moment, and the request on it fails without an answer (a 502 for the proxy's client). The
    server's idle timeout must outlast the client's, as nginx's 75 s does."""
    try:
        import uvloop  # noqa: F401 - only whether it is there
    except ImportError:
        loop = "asyncio"
    else:
        loop = "uvloop"
    return {"loop": loop, "http": GuardedHttpToolsProtocol, "access_log": False,
            "timeout_keep_alive": KEEP_ALIVE_SECONDS}
