"""Conformance: BatchStore (store/interfaces/batch.py)."""

from __future__ import annotations

from records import digest


def _chunk(store, key, chunk, *, rows=10, error_rows=0, job_id=1, size=100, errors=None):
    return store.record_transform_chunk(
        transform_key=key, chunk=chunk, job_id=job_id, rows=rows, error_rows=error_rows,
        input_bytes=size, part_digest=digest(f"{key}{chunk}"), errors_digest=errors,
    )  # fmt: skip


def test_chunks_are_recorded_once_first_record_wins(store):
    assert _chunk(store, "k", 0, rows=10, job_id=1)
    assert not _chunk(store, "k", 0, rows=99, job_id=2)
    chunks = store.transform_chunks("k")
    assert list(chunks) == [0]
    assert (chunks[0]["rows"], chunks[0]["job_id"]) == (10, 1)
    assert chunks[0]["part_digest"] == digest("k0") and chunks[0]["errors_digest"] is None


def test_chunks_and_progress_are_per_transform(store):
    _chunk(store, "k", 0, rows=10, error_rows=1, size=100, errors=digest("e"))
    _chunk(store, "k", 2, rows=5, error_rows=0, size=50)
    _chunk(store, "other", 0, rows=1000, size=1)
    assert sorted(store.transform_chunks("k")) == [0, 2]
    assert store.transform_chunks("k")[0]["errors_digest"] == digest("e")
    assert store.transform_progress("k") == {
        "chunks": 2,
        "rows": 15,
        "error_rows": 1,
        "input_bytes": 150,
    }
    assert store.transform_progress("none") == {
        "chunks": 0,
        "rows": 0,
        "error_rows": 0,
        "input_bytes": 0,
    }
    assert store.transform_chunks("none") == {}
