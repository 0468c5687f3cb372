"""Store backends by URL scheme: ``open_store(url)`` finds the factory registered for its scheme.

MLflow's tracking store registry is the model. The store package registers its own backends
(``store/__init__.py``); another package, or a test, adds one with :func:`register_store` and is
then reachable from every ``store_url`` setting without editing this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelloop.errors import ConfigError

if TYPE_CHECKING:
    from modelloop.store.base import MetadataStore

StoreFactory = Callable[[str], "MetadataStore"]

_FACTORIES: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Open URLs of ``scheme`` (``sqlite``, ``postgresql+psycopg``…) with ``factory(url)``.

    A scheme without a driver (``postgresql``) also serves URLs naming a driver it was not
    registered with (``postgresql+asyncpg``) unless that one is registered itself.
    """
    _FACTORIES[scheme.lower()] = factory


def store_schemes() -> list[str]:
    """The URL schemes a store can be opened with, sorted."""
    return sorted(_FACTORIES)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def open_store(url: str) -> MetadataStore:
    """Open (and migrate, if behind) the metadata store a URL names."""
    scheme = _scheme(url)
    factory = _FACTORIES.get(scheme) or _FACTORIES.get(scheme.split("+", 1)[0])
    if factory is None:
        raise ConfigError(
            f"unsupported metadata store URL scheme {scheme!r} in {url!r} (known: "
            f"{', '.join(store_schemes())})",
            hint="use sqlite:///path/metadata.db or postgresql://user:pass@host:5432/db",
        )
    return factory(url)
