"""The store every conformance test gets: one per backend in :data:`BACKENDS`.

A new backend runs the whole suite by adding one entry (how to open it, how to empty it between
tests, how to throw it away). Each test session (each xdist worker) opens one store per backend
and empties it before each test, so the migrations run once per backend, not once per test.
"""

from __future__ import annotations

import os
import uuid

import pytest

from modelloop.store import MetadataStore, open_store


def _empty_sql(store) -> None:
    """Delete every record (not the schema revision), children before parents."""
    import sqlalchemy as sa

    from modelloop.store.tables import metadata

    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # Append-only tables (the audit log) refuse DELETE by trigger: lift it while emptying.
            triggers = conn.execute(sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()  # fmt: skip
            for name, _ in triggers:
                conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
            for _, sql in triggers:
                conn.execute(sa.text(sql))


class SqliteBackend:
    name = "sqlite"

    def open(self, folder) -> MetadataStore:
        return open_store(f"sqlite:///{folder}/conformance.db")

    empty = staticmethod(_empty_sql)

    def drop(self) -> None:
        pass  # the folder is pytest's


class PostgresBackend:
    """A database per test session on the server the suite runs with (tests/conftest.py)."""

    name = "postgresql"

    def open(self, folder) -> MetadataStore:
        import sqlalchemy as sa

        base = os.environ.get("MODELLOOP_TEST_POSTGRES_URL")
        if not base:
            message = "PostgreSQL is not running (MODELLOOP_TEST_POSTGRES_URL unset)"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(message)
            pytest.skip(message)
        self.name_ = f"c_{uuid.uuid4().hex[:12]}"
        self.admin = sa.create_engine(
            base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name_}"'))
        return open_store(base.rsplit("/", 1)[0] + "/" + self.name_)

    empty = staticmethod(_empty_sql)

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name_}" WITH (FORCE)'))
        self.admin.dispose()


#: Every backend the conformance suites run against.
BACKENDS = [SqliteBackend, PostgresBackend]


@pytest.fixture(scope="session", params=BACKENDS, ids=lambda b: b.name)
def _backend_store(request, tmp_path_factory):
    backend = request.param()
    store = backend.open(tmp_path_factory.mktemp(backend.name))
    yield backend, store
    store.close()
    backend.drop()


@pytest.fixture
def store(_backend_store) -> MetadataStore:
    """An empty store of one backend."""
    backend, store = _backend_store
    backend.empty(store)
    return store
