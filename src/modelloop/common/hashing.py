"""sha256 of files and streams, read in large chunks (hashlib releases the GIL on big buffers,
so several files hash in parallel threads)."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

CHUNK = 8 << 20


def sha256_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left to read in a binary stream."""
    h = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def sha256_bytes(data: bytes | str) -> str:
    """Hex sha256 of bytes (text is hashed as UTF-8)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
