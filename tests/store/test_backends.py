"""Store backends by URL scheme, and interfaces that cover what the code calls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import modelloop
from modelloop.errors import ConfigError
from modelloop.store import MetadataStore, backends, open_store, register_store, store_schemes


def _declared() -> set[str]:
    names: set[str] = {"close"}
    for cls in MetadataStore.__mro__:
        names |= set(getattr(cls, "__abstractmethods__", ()))
    return names


def test_a_registered_scheme_opens_through_its_factory(monkeypatch):
    monkeypatch.setattr(backends, "_FACTORIES", dict(backends._FACTORIES))
    opened = []

    def factory(url):
        opened.append(url)
        return "a store"

    register_store("toy", factory)
    assert open_store("toy://somewhere/db") == "a store"
    assert opened == ["toy://somewhere/db"]
    assert "toy" in store_schemes()


def test_a_driver_falls_back_to_its_scheme(monkeypatch):
    monkeypatch.setattr(backends, "_FACTORIES", dict(backends._FACTORIES))
    register_store("toy", lambda url: ("toy", url))
    assert open_store("toy+fast://x") == ("toy", "toy+fast://x")


def test_an_unknown_scheme_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        open_store("mysql://x/y")
    message = str(err.value)
    assert "unsupported metadata store URL scheme 'mysql'" in message
    for scheme in ("sqlite", "postgresql", "postgresql+psycopg"):
        assert scheme in message
    with pytest.raises(ConfigError, match="unsupported"):
        open_store("no-scheme-at-all")


def test_the_store_package_registers_sqlite_and_postgresql():
    assert {"sqlite", "postgresql", "postgresql+psycopg"} <= set(store_schemes())


def test_the_sql_store_implements_exactly_the_interfaces():
    from modelloop.store.sql import SqlStore

    public = {m for m in dir(SqlStore) if not m.startswith("_")} - {"engine", "url"}
    assert public == _declared()
    assert not getattr(SqlStore, "__abstractmethods__", None)


# ``store.<name>(`` in src where ``store`` is not the metadata store (a config section's dict).
_NOT_THE_METADATA_STORE = {"get"}


def test_every_store_method_the_code_calls_is_declared():
    src = Path(modelloop.__file__).parent
    called: dict[str, str] = {}
    for path in src.rglob("*.py"):
        if "store" in path.relative_to(src).parts[:1]:
            continue
        for name in re.findall(r"\bstore\.([a-z_]+)\(", path.read_text()):
            called.setdefault(name, str(path.relative_to(src)))
    missing = {n: p for n, p in called.items() if n not in _declared()}
    for name in _NOT_THE_METADATA_STORE:
        missing.pop(name, None)
    assert not missing, f"store methods called but in no interface: {missing}"
    assert len(called) > 80  # the scan found the calls


def test_the_conformance_suites_call_every_interface_method():
    suites = Path(__file__).parent / "conformance"
    text = "\n".join(p.read_text() for p in suites.glob("*.py"))
    called = set(re.findall(r"\bstore\.([a-z_]+)\b", text))
    assert _declared() - {"close"} - called == set()
