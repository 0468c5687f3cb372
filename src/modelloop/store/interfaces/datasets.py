"""Records of datasets: append-only, numbered versions made of content-addressed parts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime


class DatasetStore(ABC):
    """Version N of a dataset is every data part of versions 1..N (versions are cumulative); a
    version's record is written last, after its parts are in the artifact store."""

    @abstractmethod
    def get_dataset(self, name: str) -> dict | None:
        """``{"id", "name", "created_at", "event_time_column", "description"}``, or None."""

    @abstractmethod
    def list_datasets(self) -> list[dict]:
        """Each dataset by name with its latest version's summary (``latest_version``,
        ``updated_at``, ``row_count``, ``quarantined_rows``, ``schema_json``)."""

    @abstractmethod
    def list_dataset_versions(self, name: str) -> list[dict]:
        """The dataset's versions, oldest first (empty for an unknown dataset)."""

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
        """Parts of ``kind`` (``data`` or ``quarantine``) of versions <= ``up_to_version`` in
        version then part order, each with its ``version``; with ``since``/``until`` only those of
        versions created in that window (``until`` exclusive)."""

    @abstractmethod
    def dataset_sources(self, name: str, up_to_version: int) -> list[dict]:
        """The source files of versions <= ``up_to_version``, in the order they were recorded."""

    @abstractmethod
    def known_source_hashes(self, name: str) -> set[str]:
        """The sha256 of every source file ever ingested into the dataset."""

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
        stream: dict | None = None,
    ) -> dict:
        """Record a new version atomically: allocate its number, write its parts and sources,
        clear writer ``txn``'s pending blobs and append a ``dataset.version_created`` event.
        Returns the version as :meth:`get_dataset_version` would.

        ``expected_schema_json`` is the schema the writer validated against (None for a new
        dataset); if the latest version's schema differs (a concurrent ingest changed it), the
        dataset was deleted meanwhile, or a source file's hash is already the dataset's, the
        commit is refused with :class:`~modelloop.errors.Conflict` and nothing is written.

        ``stream`` (a micro-batch of a stream-fed dataset): ``{"source", "position",
        "expected", "consumed"}``; the same transaction deletes the buffered appends whose ids
        are ``consumed`` and moves the source's position from ``expected`` to ``position``
        (:class:`~modelloop.store.interfaces.streams.StreamStore`), or refuses with Conflict.
        """

    @abstractmethod
    def delete_dataset_versions(
        self, name: str, version: int, *, and_later: bool, force: bool, actor: str,
        reason: str | None,
    ) -> dict:  # fmt: skip
        """Delete ``version`` (with ``and_later``, every later one too) in one transaction.

        Refused (:class:`~modelloop.errors.InvalidInput`) when later versions exist without
        ``and_later``, and when a registered model was trained on the data unless ``force`` with
        a ``reason``; :class:`~modelloop.errors.NotFound` for an unknown dataset or version.
        Baselines of the deleted versions are deleted, or detached when a monitor uses them.
        Deleting version 1 frees the name and forgets its stream state (source positions and
        buffered appends), so a dataset or stream created again under it starts afresh. Appends a ``dataset.version_deleted`` event. Returns
        ``dataset``, ``versions``, ``models``, ``baselines_deleted``, ``baselines_kept`` and the
        blob ``digests`` no longer recorded, for the caller to remove unless referenced elsewhere.
        """
