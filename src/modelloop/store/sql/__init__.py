"""The metadata store on SQLAlchemy Core: one module per aggregate on a shared base (``engine``),
composed into :class:`SqlStore` (``store``)."""

from modelloop.store.sql.store import SqlStore

__all__ = ["SqlStore"]
