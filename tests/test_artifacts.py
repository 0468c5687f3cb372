"""The content-addressed artifact store, on a local folder and on a real S3-compatible server."""

from __future__ import annotations

import hashlib
import os

import pytest

from modelloop.artifacts import ArtifactStore
from modelloop.errors import IntegrityError, NotFound


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    return ArtifactStore(request.getfixturevalue("s3_bucket"))


def _tamper(store: ArtifactStore, digest: str, data: bytes) -> None:
    if store.is_local:
        with open(store.location(digest), "wb") as fh:
            fh.write(data)
    else:
        store._fs.pipe_file(store.location(digest), data)


def test_put_and_read_verified(store, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    blob = store.put_file(src)
    assert blob.digest == hashlib.sha256(src.read_bytes()).hexdigest()
    assert blob.size == src.stat().st_size
    assert store.exists(blob.digest)
    assert store.read_bytes(blob.digest) == src.read_bytes()
    assert store.digests() == [blob.digest]
    # same content again is stored once
    assert store.put_bytes(src.read_bytes()).digest == blob.digest
    assert store.digests() == [blob.digest]
    out = store.fetch(blob.digest, tmp_path / "copy" / "b.bin")
    assert out.read_bytes() == src.read_bytes()


def test_tampered_blob_is_refused_with_its_name(store):
    blob = store.put_bytes(b"the original model bytes")
    _tamper(store, blob.digest, b"something else entirely")
    with pytest.raises(IntegrityError) as info:
        store.read_bytes(blob.digest)
    assert blob.digest[:12] in str(info.value) and "no longer matches" in str(info.value)


def test_missing_blob_is_not_found(store):
    with pytest.raises(NotFound, match="missing"):
        store.read_bytes("0" * 64)


def test_delete(store):
    blob = store.put_bytes(b"x")
    store.delete(blob.digest)
    assert not store.exists(blob.digest)
    store.delete(blob.digest)  # idempotent


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = ArtifactStore(str(tmp_path / "a"))
    for i in range(5):
        store.put_bytes(f"blob {i}".encode())
    assert list((tmp_path / "a" / "tmp").iterdir()) == []
    # a leftover of a dead writer is cleaned, one of a live writer is kept
    dead = tmp_path / "a" / "tmp" / "999999999-abc.part"
    live = tmp_path / "a" / "tmp" / f"{os.getpid()}-abc.part"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    assert store.clean_tmp() == 1
    assert live.exists() and not dead.exists()
