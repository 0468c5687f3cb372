"""Triggers, their firings and the files their watched locations showed.

A firing is one cause of one trigger: recording it is idempotent (``(trigger, cause_key)`` is
unique), and moving it between states is a conditional update, so two controllers (or one that
restarted) never both run it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime


class TriggerStore(ABC):
    """A trigger's ``cause``, ``action``, ``retry`` and ``cursor`` and a firing's ``cause``,
    ``action``, ``started`` and ``result`` are JSON values and read back decoded."""

    # -- triggers -----------------------------------------------------------------------------
    @abstractmethod
    def create_trigger(self, record: dict) -> dict:
        """Insert a trigger (``name``, ``cause``, ``action``, ``target``, ``concurrency``,
        ``missed``, ``retry``, ``paused``, ``owner``, ``cursor``, ``after_event``); AlreadyExists
        when the name is taken."""

    @abstractmethod
    def get_trigger(self, name: str) -> dict | None: ...

    @abstractmethod
    def list_triggers(self, *, owner: str | None = None) -> list[dict]:
        """Triggers by name (only ``owner``'s when given)."""

    @abstractmethod
    def update_trigger(self, name: str, fields: dict) -> dict | None:
        """Set fields; the updated trigger, or None when there is none of that name."""

    @abstractmethod
    def delete_trigger(self, name: str) -> bool:
        """Delete the trigger and what its watched location showed (its firings stay, as
        history); whether it existed."""

    @abstractmethod
    def last_event_id(self) -> int:
        """The id of the newest event of the event log (0 when it is empty): a new trigger
        ignores the events before it."""

    # -- firings ------------------------------------------------------------------------------
    @abstractmethod
    def record_firing(
        self, trigger: str, cause_key: str, cause: dict, *, status: str = "pending",
        error: str | None = None, cursor: tuple[dict, dict] | None = None,
        watched_file: int | None = None,
    ) -> dict | None:  # fmt: skip
        """Record one cause of ``trigger`` (its action and target copied from the trigger), in
        one transaction with the trigger's ``cursor`` moving from ``cursor[0]`` to
        ``cursor[1]`` and, for a watched file, that file's row pointing at the firing. None (and
        nothing changed) when this cause was recorded before, the trigger is gone, or its cursor
        is no longer ``cursor[0]``."""

    @abstractmethod
    def get_firing(self, firing_id: int) -> dict | None: ...

    @abstractmethod
    def list_firings(
        self, *, trigger: str | None = None, statuses: Iterable[str] | None = None,
        target: str | None = None, limit: int | None = 50, oldest_first: bool = False,
    ) -> list[dict]:  # fmt: skip
        """Firings matching every filter given, newest first (or oldest first)."""

    @abstractmethod
    def update_firing(
        self, firing_id: int, *, only_if_status: Iterable[str] | None = None,
        only_if_claimed_by: str | None = None, **fields,
    ) -> bool:  # fmt: skip
        """Set fields (``started``/``result`` as JSON values), only in one of
        ``only_if_status`` and only while claimed by ``only_if_claimed_by`` when given. Whether
        it changed: the claim of a firing is this conditional update."""

    # -- watched files ------------------------------------------------------------------------
    @abstractmethod
    def watched_files(self, trigger: str) -> dict[str, dict]:
        """path -> ``{"id", "size", "version", "seen_at", "firing_id"}`` of the trigger's files."""

    @abstractmethod
    def see_file(self, trigger: str, path: str, size: int, version: str, now: datetime) -> None:
        """Remember a file as seen now with this size and version (a new file, or one that
        changed since last seen and was not fired for yet); a file already fired is left."""
