"""The metadata store's interface, and the function that picks an implementation by URL.

Domain code talks to :class:`MetadataStore` only. Today one implementation, :class:`SqlStore`,
serves both SQLite (embedded default) and PostgreSQL (scale-out) through SQLAlchemy; a REST store
for remote workspaces would be a third, in the spirit of MLflow's ``store/``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime

from modelloop.errors import ConfigError


class MetadataStore(ABC):
    """Records of everything in a workspace. Every method is one transaction."""

    url: str

    # -- datasets -----------------------------------------------------------------------------
    @abstractmethod
    def get_dataset(self, name: str) -> dict | None: ...

    @abstractmethod
    def list_datasets(self) -> list[dict]:
        """Each dataset with its latest version's summary (``latest_version``, ``row_count``…)."""

    @abstractmethod
    def list_dataset_versions(self, name: str) -> list[dict]: ...

    @abstractmethod
    def get_dataset_version(self, name: str, version: int | None = None) -> dict | None:
        """One version (the latest when ``version`` is None), or None."""

    @abstractmethod
    def dataset_parts(
        self,
        name: str,
        up_to_version: int,
        *,
        kind: str = "data",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict]:
        """Parts of versions <= ``up_to_version``, optionally only those added within a window."""

    @abstractmethod
    def dataset_sources(self, name: str, up_to_version: int) -> list[dict]: ...

    @abstractmethod
    def known_source_hashes(self, name: str) -> set[str]: ...

    @abstractmethod
    def commit_dataset_version(
        self,
        *,
        name: str,
        txn: str,
        schema_json: str,
        added_rows: int,
        quarantined_rows: int,
        parts: list[dict],
        sources: list[dict],
        event_time_column: str | None,
        event_time_min: datetime | None,
        event_time_max: datetime | None,
        schema_changes: str | None,
        expected_schema_json: str | None,
    ) -> dict:
        """Record a new version atomically: allocate its number, write its parts and sources,
        clear the writer's pending blobs and append a ``dataset.version_created`` event.

        ``expected_schema_json`` is the schema the writer validated against; if the latest
        version's schema differs (a concurrent ingest changed it), or a source file's hash is
        already the dataset's, the commit is refused with :class:`~modelloop.errors.Conflict`.
        """

    @abstractmethod
    def delete_dataset_versions(
        self, name: str, version: int, *, and_later: bool, force: bool, actor: str,
        reason: str | None,
    ) -> dict:  # fmt: skip
        """Delete ``version`` (with ``and_later``, every later one too) in one transaction.

        Refused when later versions exist without ``and_later``, and when a registered model was
        trained on the data unless ``force``. Baselines of the deleted versions are deleted, or
        detached when a monitor uses them. Appends a ``dataset.version_deleted`` event. Returns
        ``versions``, ``models``, ``baselines_deleted``, ``baselines_kept`` and the blob
        ``digests`` no longer recorded, for the caller to remove unless referenced elsewhere.
        """

    # -- jobs (tracked work) -------------------------------------------------------------------
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
    ) -> int: ...

    @abstractmethod
    def update_job(
        self, job_id: int, *, only_if_status: tuple[str, ...] | None = None, **fields
    ) -> bool:
        """Set fields (dict/list values are stored as JSON); with ``only_if_status``, only when the
        job is in one of those states. Returns whether the row changed."""

    @abstractmethod
    def get_job(self, job_id: int) -> dict | None: ...

    @abstractmethod
    def list_jobs(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        parent_id: int | None = None,
        limit: int | None = None,
    ) -> list[dict]: ...

    @abstractmethod
    def log_job_metrics(self, job_id: int, rows: list[tuple[str, float, int | None]]) -> None: ...

    @abstractmethod
    def job_metric_series(self, job_id: int) -> list[dict]: ...

    @abstractmethod
    def add_job_artifact(self, job_id: int, name: str, digest: str, size: int) -> None: ...

    @abstractmethod
    def job_artifacts(self, job_id: int) -> list[dict]: ...

    # -- model registry -------------------------------------------------------------------------
    @abstractmethod
    def register_model_version(self, *, name: str, files: list[dict], manifest: dict, package_hash: str,
                               flavor: str, task: str | None, job_id: int | None, actor: str,
                               description: str | None = None, holds_code: bool = False,
                               trust: dict | None = None) -> dict:
        """Create the model if new and add its next version (pending), with history and event.
        ``trust`` ({"actor", "reason"}) records that a person trusted the code its files hold."""

    @abstractmethod
    def trust_model_version(self, name: str, version: int, *, actor: str, reason: str) -> dict:
        """Record that a person trusts the code a version's files hold (history and event)."""

    @abstractmethod
    def get_model(self, name: str) -> dict | None: ...

    @abstractmethod
    def list_models(self) -> list[dict]: ...

    @abstractmethod
    def get_model_version(self, name: str, version: int | None = None) -> dict | None: ...

    @abstractmethod
    def list_model_versions(self, name: str) -> list[dict]: ...

    @abstractmethod
    def model_aliases(self, name: str) -> dict[str, int]: ...

    @abstractmethod
    def model_files(self, name: str, version: int) -> list[dict]: ...

    @abstractmethod
    def set_model_status(self, name: str, version: int, status: str, *, actor: str, reason: str | None,
                         allowed_from: tuple[str, ...]) -> dict: ...

    @abstractmethod
    def move_alias(self, name: str, alias: str, version: int | None, *, actor: str, reason: str | None,
                   action: str = "alias_set", expected: int | None = -1,
                   allowed_status: tuple[str, ...] | None = None) -> int | None: ...

    @abstractmethod
    def model_history(self, name: str) -> list[dict]: ...

    @abstractmethod
    def mark_model_deployed(self, name: str, version: int, *, actor: str, where: str) -> None: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: int, *, actor: str, reason: str | None) -> None: ...

    # -- crash safety -------------------------------------------------------------------------
    @abstractmethod
    def add_pending_blobs(self, txn: str, digests: Iterable[str]) -> None: ...

    @abstractmethod
    def pending_transactions(self) -> list[dict]:
        """Unfinished writers: ``{"txn", "host", "pid", "created_at", "digests": [...]}``."""

    @abstractmethod
    def drop_pending(self, txn: str) -> None: ...

    @abstractmethod
    def referenced_digests(
        self, digests: Iterable[str], *, ignore_txn: str | None = None
    ) -> set[str]:
        """Those of ``digests`` that some record, or another writer's pending list, refers to."""

    # -- events -------------------------------------------------------------------------------
    @abstractmethod
    def append_event(self, kind: str, subject: str, payload: dict) -> int: ...

    @abstractmethod
    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000
    ) -> list[dict]: ...

    def close(self) -> None:  # noqa: B027 - optional for implementations holding no resources
        """Release connections."""


def open_store(url: str) -> MetadataStore:
    """Open (and migrate) the metadata store a URL names."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("sqlite", "postgresql", "postgres"):
        from modelloop.store.sql import SqlStore

        return SqlStore(url)
    raise ConfigError(
        f"unsupported metadata store URL scheme {scheme!r} in {url!r}",
        hint="use sqlite:///path/metadata.db or postgresql://user:pass@host:5432/db",
    )
