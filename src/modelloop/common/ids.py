"""Identifiers that sort by the time they were made.

Serving names every answer it gives (the inference id) unless the client named it, and the
capture index (``capture_ids``) keeps those ids in a B-tree on (endpoint, id). Random version-4
UUIDs land all over that tree: each flush of a second's captures rewrote hundreds of its pages
(and as many pages of the database's write-ahead log). Version-7 UUIDs (RFC 9562: Unix
milliseconds first, random bits after) land at its end, as appends do.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_pool = b""  # random bytes read ahead: one read of the system's source per 400 ids, not per id
_used = 0


def time_ordered_uuid() -> str:
    """A version-7 UUID as text: 48 bits of Unix time in milliseconds, then 74 random bits
    (from ``os.urandom``); ids made in a later millisecond sort after earlier ones."""
    global _pool, _used
    ms = time.time_ns() // 1_000_000
    with _lock:
        if _used + 10 > len(_pool):
            _pool, _used = os.urandom(4000), 0
        raw = bytearray(ms.to_bytes(8, "big")[2:] + _pool[_used:_used + 10])
        _used += 10
    raw[6] = 0x70 | raw[6] & 0x0F  # version 7
    raw[8] = 0x80 | raw[8] & 0x3F  # RFC 9562 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
