"""Limits that keep one client from hurting the others: a request body cap (counted as the body
streams, so a lying or absent Content-Length does not get past it) and a per-token rate limit."""

from __future__ import annotations

import math
import threading
import time

from fastapi import HTTPException

from modelloop.api.errors import error_body
from modelloop.errors import RateLimited


class TokenBuckets:
    """A token bucket per caller (``rate`` requests a second on average, ``burst`` at once), in
    this process's memory: a limit per server process, which is what protects that process.
    Written here because the one well-kept library for it (slowapi) brings its own storage
    layer and decorators for what is twenty lines."""

    def __init__(self, rate: float, burst: int, *, clock=time.monotonic, max_keys: int = 100_000):
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the caller may go on, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                if len(self._buckets) >= self.max_keys and key not in self._buckets:
                    self._buckets.clear()  # a flood of distinct keys: forget, stay bounded
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def check(self, key: str) -> None:
        wait = self.take(key)
        if wait:
            raise RateLimited(f"too many requests: at most {self.rate:g} a second (bursts of "
                              f"{self.burst}) per token; retry in {wait:.1f} s",
                              retry_after=max(1, math.ceil(wait)),
                              hint="slow down, or raise [api] rate_limit on the server")  # fmt: skip


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413 (JSON); upload routes
    (``upload_prefixes`` matched by path) count their own, larger limit as they stream."""

    def __init__(self, app, limit: int, is_upload):
        self.app, self.limit, self.is_upload = app, limit, is_upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.is_upload(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)
        limit = self.limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return await _too_large(send, limit)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _message(limit))
            return message

        return await self.app(scope, counted, send)


def _message(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes ([api] max_body_bytes)"


async def _too_large(send, limit: int) -> None:
    import orjson

    body = orjson.dumps(error_body("TooLarge", _message(limit), field="body"))
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Threads:
    """ASGI middleware: at least ``total`` threads for the routes' calls (anyio's default is 40,
    shared by every sync route): a call such as ``training.train`` or ``endpoints.deploy`` holds
    its thread until the job or rollout ends, and forty of them must not stall every read."""

    def __init__(self, app, total: int):
        self.app, self.total, self._seen = app, total, None

    async def __call__(self, scope, receive, send):
        import anyio.to_thread

        limiter = anyio.to_thread.current_default_thread_limiter()  # one per event loop
        if limiter is not self._seen:
            limiter.total_tokens = max(limiter.total_tokens, self.total)
            self._seen = limiter
        return await self.app(scope, receive, send)
