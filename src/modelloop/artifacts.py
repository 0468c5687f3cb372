"""Content-addressed artifact store on fsspec: a local folder by default, ``s3://`` to scale out.

Every blob is named by the sha256 of its bytes (``blobs/sha256/ab/cdef…``), so identical content is
stored once and a blob can be checked against its name on every read. Writes are atomic: a local
blob is written under a temporary name and renamed into place; an S3 object only becomes visible
when its upload completes. Reads verify the hash and refuse content that no longer matches.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelloop.common.hashing import sha256_bytes, sha256_file
from modelloop.common.remote import remote_filesystem
from modelloop.errors import ConfigError, IntegrityError, InvalidInput, NotFound

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


class ArtifactStore:
    """Blobs addressed by sha256 under one fsspec location."""

    def __init__(self, url: str, options: dict | None = None):
        self.url = url.rstrip("/")
        self.options = dict(options or {})
        self.is_local = "://" not in url or url.startswith("file://")
        if self.is_local:
            self.root = url.removeprefix("file://")
            try:
                Path(self.root, "blobs").mkdir(parents=True, exist_ok=True)
                Path(self.root, "tmp").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot use {self.root} as the artifact store: {exc.strerror or exc}"
                ) from None
            self._fs = None
        else:
            self.root = url.split("://", 1)[1].strip("/")
            if not self.root:
                raise ConfigError(
                    f"artifact store url {url!r} names no bucket",
                    hint=f"use {url.split('://', 1)[0]}://bucket/prefix",
                )
            self._fs = remote_filesystem(self.url, self.options)

    # -- naming -------------------------------------------------------------------------------
    def _key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise InvalidInput(f"{digest!r} is not a sha256 digest")
        return f"{self.root}/blobs/sha256/{digest[:2]}/{digest[2:]}"

    def location(self, digest: str) -> str:
        """Where a blob lives, for people (a path or a URL)."""
        key = self._key(digest)
        return key if self.is_local else f"{self.url.split('://', 1)[0]}://{key}"

    # -- writing ------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, digest: str | None = None) -> Blob:
        """Store a local file; returns its blob. Uploading existing content is a no-op."""
        digest = digest or sha256_file(path)
        size = os.path.getsize(path)
        if self.is_local:
            self._commit_local(digest, lambda tmp: shutil.copyfile(path, tmp))
        elif not self._fs.exists(self._key(digest)):
            self._fs.put_file(str(path), self._key(digest))
        return Blob(digest, size)

    def put_bytes(self, data: bytes) -> Blob:
        digest = sha256_bytes(data)
        if self.is_local:  # written once (capture writes several blobs a second)
            self._commit_local(digest, lambda tmp: Path(tmp).write_bytes(data))
            return Blob(digest, len(data))
        with tempfile.NamedTemporaryFile(dir=self._scratch(), delete=False) as fh:
            fh.write(data)
        try:
            return self.put_file(fh.name, digest)
        finally:
            os.unlink(fh.name)

    def _commit_local(self, digest: str, write) -> None:
        """Write a local blob with ``write(tmp)`` under a temporary name and rename it into
        place (atomic); nothing to do when the blob is there already."""
        key = self._key(digest)
        if os.path.exists(key):
            return
        os.makedirs(os.path.dirname(key), exist_ok=True)
        tmp = os.path.join(self.root, "tmp", f"{os.getpid()}-{uuid.uuid4().hex}.part")
        try:
            write(tmp)
            os.replace(tmp, key)  # atomic commit
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _scratch(self) -> str | None:
        return os.path.join(self.root, "tmp") if self.is_local else None

    # -- reading ------------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        return os.path.exists(key) if self.is_local else self._fs.exists(key)

    def read_bytes(self, digest: str) -> bytes:
        """The blob's bytes, after checking them against the digest."""
        key = self._key(digest)
        try:
            if self.is_local:
                with open(key, "rb") as fh:
                    data = fh.read()
            else:
                data = self._fs.cat_file(key)
        except FileNotFoundError:
            raise NotFound(
                f"artifact {digest[:12]} is missing from {self.location(digest)}",
                hint="the artifact store was changed outside modelloop",
            ) from None
        actual = sha256_bytes(data)
        if actual != digest:
            raise IntegrityError(
                f"artifact {self.location(digest)} no longer matches its hash "
                f"(expected sha256 {digest[:12]}…, found {actual[:12]}…)",
                hint="it was modified after it was written; restore it from a backup",
            )
        return data

    def open(self, digest: str) -> BinaryIO:
        """A verified, in-memory readable file of the blob."""
        return io.BytesIO(self.read_bytes(digest))

    def fetch(self, digest: str, dest: str | os.PathLike) -> Path:
        """Copy a verified blob to a local file (written atomically)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{uuid.uuid4().hex}.part")
        tmp.write_bytes(self.read_bytes(digest))
        os.replace(tmp, dest)
        return dest

    # -- housekeeping -------------------------------------------------------------------------
    def delete(self, digest: str) -> None:
        key = self._key(digest)
        if self.is_local:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(key)
        elif self._fs.exists(key):
            self._fs.rm_file(key)

    def digests(self) -> list[str]:
        """Every stored blob's digest (for garbage collection and consistency checks)."""
        base = f"{self.root}/blobs/sha256"
        if self.is_local:
            found = []
            for dirpath, _dirs, files in os.walk(base):
                prefix = os.path.basename(dirpath)
                found += [prefix + f for f in files if _DIGEST.match(prefix + f)]
            return sorted(found)
        try:
            paths = self._fs.find(base)
        except FileNotFoundError:
            return []
        out = []
        for p in paths:
            parts = p.rstrip("/").split("/")
            if len(parts) >= 2 and _DIGEST.match(parts[-2] + parts[-1]):
                out.append(parts[-2] + parts[-1])
        return sorted(out)

    def clean_tmp(self) -> int:
        """Remove leftovers of local writes whose process died; returns how many were removed."""
        from modelloop._faults import pid_alive

        if not self.is_local:
            return 0
        removed = 0
        tmp = Path(self.root, "tmp")
        for entry in tmp.glob("*.part"):
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and pid_alive(int(pid)):
                continue
            try:
                entry.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed
