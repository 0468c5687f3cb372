"""The event stream's backends for its one conformance suite: the embedded stream on SQLite and
on PostgreSQL, and Redis Streams (fed from a SQLite store) when a Redis server is running.

Each backend's store is opened once per session and emptied before each test (as the store's
own conformance suite does); a Redis test gets a stream key of its own.
"""

from __future__ import annotations

import pytest
from tests.store.conformance.conftest import PostgresBackend, SqliteBackend


class Events:
    """One backend: its store (to append events as the services do) and fresh stream objects
    on it (a new object stands for a restarted process)."""

    def __init__(self, name: str, store, make):
        self.name = name
        self.store = store
        self._make = make
        self._opened = []

    def stream(self):
        stream = self._make()
        self._opened.append(stream)
        return stream

    def append(self, n: int = 1, kind: str = "test.happened") -> list[int]:
        return [self.store.append_event(kind, f"s{i}", {"i": i}) for i in range(n)]

    def close(self) -> None:
        for stream in self._opened:
            stream.close()


@pytest.fixture(scope="session")
def _sql_stores(tmp_path_factory):
    opened = {}
    yield opened
    for backend, store in opened.values():
        store.close()
        backend.drop()


def _sql_store(kind: str, opened: dict, tmp_path_factory):
    if kind not in opened:
        backend = {"sqlite": SqliteBackend, "postgresql": PostgresBackend}[kind]()
        opened[kind] = (backend, backend.open(tmp_path_factory.mktemp(kind)))
    backend, store = opened[kind]
    backend.empty(store)
    return store


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def events(request, _sql_stores, tmp_path_factory):
    """An empty event log and a way to open streams on it, for each backend."""
    from modelloop.events.embedded import StoreStream

    if request.param == "redis":
        import uuid

        from modelloop.events.redis_stream import RedisStream

        url = request.getfixturevalue("redis_url")
        store = _sql_store("sqlite", _sql_stores, tmp_path_factory)
        key = f"test:{uuid.uuid4().hex[:12]}"
        backend = Events("redis", store, lambda: RedisStream(url, store, key=key))
    else:
        store = _sql_store(request.param, _sql_stores, tmp_path_factory)
        backend = Events(request.param, store, lambda: StoreStream(store))
    yield backend
    backend.close()
