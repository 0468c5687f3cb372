"""Leases: one holder at a time for a named role (the controller's leadership), with an expiry."""

from __future__ import annotations

from abc import ABC, abstractmethod


class LeaseStore(ABC):
    """A lease is held by one holder until its expiry, on the store's own clock (holders on
    several machines thus agree on when it ran out). Each call is one transaction and atomic
    against concurrent callers: two holders never both succeed for one lease."""

    @abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl: float) -> dict | None:
        """Renew ``name`` for ``holder`` (it holds it and it has not expired), or take it (free,
        expired, or never held) for ``ttl`` seconds from now. The lease
        ``{"name", "holder", "term", "acquired_at", "renewed_at", "expires_at"}`` when
        ``holder`` holds it after the call, else None. ``term`` grows by one whenever the lease
        is taken (not when renewed), also when its old holder takes it back after it expired."""

    @abstractmethod
    def release_lease(self, name: str, holder: str) -> bool:
        """Let the lease go now if ``holder`` holds it (another may take it at once); whether
        it did."""

    @abstractmethod
    def get_lease(self, name: str) -> dict | None:
        """The lease as :meth:`acquire_lease` gives it plus ``"expired"`` (on the store's
        clock), or None if it was never taken."""
