"""The workspace's store with the serving SQL mixed in (the pattern of ``pipelines.runs``)."""

from __future__ import annotations

_MIXED: dict[type, type] = {}


def serving_store(store):
    """``store`` if its class already has the serving SQL, else the same store with it mixed in."""
    if hasattr(store, "create_endpoint"):
        return store
    from modelloop.store.sql_serving import ServingStoreMixin

    cls = _MIXED.get(type(store))
    if cls is None:
        cls = _MIXED[type(store)] = type(type(store).__name__, (ServingStoreMixin, type(store)), {})
    mixed = cls.__new__(cls)
    mixed.__dict__.update(store.__dict__)  # the same engine and URL, no new connections
    return mixed
