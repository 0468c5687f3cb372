"""Metadata store: the records of a workspace (SQLite by default, PostgreSQL to scale out).

The interfaces are in ``interfaces/`` (one per concern, :class:`MetadataStore` is all of them);
backends are chosen by URL scheme (:func:`open_store`, :func:`register_store`). The SQL backend
registers its schemes here and is imported only when a store is opened.
"""

from modelloop.store.backends import open_store, register_store, store_schemes
from modelloop.store.base import MetadataStore


def _open_sql(url: str) -> MetadataStore:
    from modelloop.store.sql import SqlStore

    return SqlStore(url)


for _scheme in ("sqlite", "postgresql", "postgresql+psycopg", "postgres"):
    register_store(_scheme, _open_sql)

__all__ = ["MetadataStore", "open_store", "register_store", "store_schemes"]
