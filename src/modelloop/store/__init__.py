"""Metadata store: the records of a workspace (SQLite by default, PostgreSQL to scale out)."""

from modelloop.store.base import MetadataStore, open_store

__all__ = ["MetadataStore", "open_store"]
