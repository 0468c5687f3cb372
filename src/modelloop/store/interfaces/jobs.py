"""Records of tracked work (jobs): spec, parameters, status, metrics, lineage and artifacts."""

from __future__ import annotations

from abc import ABC, abstractmethod


class JobStore(ABC):
    """A job's ``spec``, ``params``, ``metrics``, ``inputs``, ``outputs`` and ``info`` are JSON
    values; they read back decoded (``{}``, or ``[]`` for ``inputs``, when empty)."""

    @abstractmethod
    def create_job(
        self,
        *,
        kind: str,
        name: str | None,
        spec: dict,
        params: dict,
        inputs: list | None = None,
        parent_id: int | None = None,
        status: str = "queued",
    ) -> int:
        """A new job (``created_at`` now); returns its id, ids increasing."""

    @abstractmethod
    def update_job(
        self, job_id: int, *, only_if_status: tuple[str, ...] | None = None, **fields
    ) -> bool:
        """Set fields (dict/list values are stored as JSON); with ``only_if_status``, only when the
        job is in one of those states (compare-and-set). Returns whether the row changed."""

    @abstractmethod
    def get_job(self, job_id: int) -> dict | None:
        """The job, or None."""

    @abstractmethod
    def list_jobs(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        parent_id: int | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict]:
        """Jobs matching every filter given, newest first, at most ``limit``, skipping the first
        ``offset`` (a page of a long list read by the database, not sliced after)."""

    @abstractmethod
    def log_job_metrics(self, job_id: int, rows: list[tuple[str, float, int | None]]) -> None:
        """Append metric points ``(key, value, step)``."""

    @abstractmethod
    def job_metric_series(self, job_id: int) -> list[dict]:
        """Every logged point, in logging order: ``{"key", "value", "step", "time", …}``."""

    @abstractmethod
    def add_job_artifact(self, job_id: int, name: str, digest: str, size: int) -> None:
        """Record an artifact the job produced; a second one of the same name replaces it."""

    @abstractmethod
    def job_artifacts(self, job_id: int) -> list[dict]:
        """The job's artifacts by name: ``{"name", "digest", "size", …}``."""
