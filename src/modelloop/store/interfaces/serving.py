"""Records of real-time serving: endpoints, rollouts, capture files and live statistics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime


class ServingStore(ABC):
    """An endpoint's ``revision`` goes up on every change of its spec, so that servers notice a
    change by polling :meth:`endpoint_revisions`. A rollout is the whole state of a deployment in
    progress, so any process can pick it up after a restart."""

    # -- endpoints ----------------------------------------------------------------------------
    @abstractmethod
    def create_endpoint(self, name: str, spec: dict, *, actor: str | None = None) -> dict:
        """A new endpoint at revision 1, ``in_service``; :class:`~modelloop.errors.AlreadyExists`
        if the name is taken."""

    @abstractmethod
    def get_endpoint(self, name: str) -> dict | None:
        """The endpoint with its decoded ``spec``, or None."""

    @abstractmethod
    def list_endpoints(self) -> list[dict]:
        """Every endpoint, by name."""

    @abstractmethod
    def endpoint_revisions(self) -> dict[str, int]:
        """name -> revision of every endpoint (one small query)."""

    @abstractmethod
    def update_endpoint(
        self, name: str, spec: dict, *, actor: str | None = None, status: str | None = None,
        expected_revision: int | None = None,
    ) -> dict:  # fmt: skip
        """Replace the spec (revision + 1, optionally a new status); with ``expected_revision``
        only if nobody changed it since (:class:`~modelloop.errors.InvalidInput` otherwise).
        :class:`~modelloop.errors.NotFound` for an unknown endpoint. Returns the endpoint."""

    @abstractmethod
    def delete_endpoint(self, name: str) -> None:
        """Delete the endpoint and its statistics; its running rollout becomes ``failed``.
        :class:`~modelloop.errors.NotFound` for an unknown endpoint."""

    # -- rollouts -----------------------------------------------------------------------------
    @abstractmethod
    def create_rollout(
        self, *, endpoint: str, strategy: str, model: str, state: dict, actor: str | None = None
    ) -> dict:
        """A ``running`` rollout; :class:`~modelloop.errors.InvalidInput` while another one runs
        on the same endpoint."""

    @abstractmethod
    def get_rollout(self, rollout_id: int) -> dict | None:
        """The rollout with its decoded ``state``, or None."""

    @abstractmethod
    def list_rollouts(
        self, *, endpoint: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[dict]:
        """Rollouts matching every filter given, newest first, at most ``limit``."""

    @abstractmethod
    def claim_rollout(self, rollout_id: int, owner: str, until: datetime) -> bool:
        """Take (or extend) the lease to drive a running rollout until ``until``; False if
        another owner holds an unexpired lease or the rollout is not running."""

    @abstractmethod
    def advance_rollout(
        self, rollout_id: int, *, state: dict, status: str = "running", reason: str | None = None,
        spec: dict | None = None, endpoint_status: str | None = None, actor: str | None = None,
    ) -> bool:  # fmt: skip
        """Record a running rollout's next state and, in the same transaction, the endpoint's
        new spec (revision + 1) and status. A rollout leaving ``running`` ends (its lease is
        released). False, and nothing written, if the rollout is not running."""

    @abstractmethod
    def mark_rollout(self, rollout_id: int, *, status: str, reason: str | None) -> None:
        """Set a finished rollout's status (e.g. a completed one undone by a rollback)."""

    # -- capture files ------------------------------------------------------------------------
    @abstractmethod
    def add_capture_files(self, files: list[dict]) -> None:
        """Index capture files (``endpoint``, ``variant``, ``hour``, ``digest``, ``records``,
        ``first_time``, ``last_time``…) and, in the same transaction, their records' inference
        ids (``ids``: (id, rows) pairs; a file without ``ids`` stays unindexed)."""

    @abstractmethod
    def find_capture_ids(self, endpoint: str, ids: list[str]) -> dict[str, set[int]]:
        """Indexed inference ids of an endpoint among ``ids``, each with the row counts of its
        requests."""

    @abstractmethod
    def unindexed_capture_files(self, endpoint: str) -> list[dict]:
        """Capture files written before their ids were indexed (an older modelloop)."""

    @abstractmethod
    def index_capture_file(self, file_id: int, endpoint: str, ids: list[tuple[str, int]]) -> None:
        """Record the ids of an unindexed capture file, once (a racing indexer finds it done)."""

    @abstractmethod
    def list_capture_files(
        self, endpoint: str, *, variant: str | None = None, since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict]:  # fmt: skip
        """Capture files of an endpoint (optionally one variant) overlapping [since, until],
        ordered by their first record's time."""

    # -- statistics ---------------------------------------------------------------------------
    @abstractmethod
    def put_endpoint_stats(self, server: str, rows: list[tuple[str, str, dict]]) -> None:
        """Upsert a server's cumulative counters per (endpoint, variant)."""

    @abstractmethod
    def read_endpoint_stats(self, endpoint: str | None = None) -> list[dict]:
        """Every server's counters (``server``, ``endpoint``, ``variant``, decoded ``data``,
        ``updated_at``), optionally of one endpoint."""
