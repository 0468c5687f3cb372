"""Access: API tokens (hashed) and the append-only audit log."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime


class AccessStore(ABC):
    """Token records hold a hash, never a token. Audit records are only ever appended: there is
    no method to change or delete one, and the database refuses it too (a trigger)."""

    @abstractmethod
    def create_token(self, *, name: str, role: str, hash: str, expires_at: datetime | None,
                     created_by: str) -> dict:  # fmt: skip
        """Record a token and return its row (``id``, ``name``, ``role``, ``hash``,
        ``created_at``, ``expires_at``, ``revoked_at``, ``created_by``, ``last_used_at``).
        ``AlreadyExists`` when a token of that name is not revoked (expired ones included:
        revoke it first), atomically against concurrent creators."""

    @abstractmethod
    def get_token(self, token_id: int) -> dict | None:
        """The row of token ``token_id`` (revoked or not), or None."""

    @abstractmethod
    def list_tokens(self, *, include_revoked: bool = False) -> list[dict]:
        """Token rows by id, without revoked ones unless asked."""

    @abstractmethod
    def revoke_token(self, token_id: int) -> dict | None:
        """Mark the token revoked now (a second revoke keeps the first time); its row after, or
        None if there is no such token."""

    @abstractmethod
    def touch_token(self, token_id: int, at: datetime) -> None:
        """Record that the token was used at ``at`` (never moves ``last_used_at`` back)."""

    @abstractmethod
    def append_audit(self, *, actor: str, actor_kind: str, action: str, subject: str | None,
                     arguments: dict, outcome: str, source: str,
                     at: datetime | None = None) -> int:  # fmt: skip
        """Append one record (``at`` defaults to now) and return its id; ids grow."""

    @abstractmethod
    def list_audit(self, *, since: datetime | None = None, until: datetime | None = None,
                   actor: str | None = None, action: str | None = None,
                   source: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:  # fmt: skip
        """Audit records, newest first, filtered by time (``since <= at < until``), exact
        actor and source, and ``action`` (exact, or a prefix when it ends in ``*``);
        ``arguments`` decoded."""
