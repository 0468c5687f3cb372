"""Records of stream-fed datasets: the buffer of appended rows, and the positions of stream
sources whose entries are in committed versions."""

from __future__ import annotations

from abc import ABC, abstractmethod


class StreamStore(ABC):
    """Rows reach a stream-fed dataset's versions exactly once: a version's commit
    (:meth:`~modelloop.store.interfaces.datasets.DatasetStore.commit_dataset_version` with
    ``stream=``) deletes the buffered appends it took and moves its source's position, in its
    own transaction, and is refused (:class:`~modelloop.errors.Conflict`, nothing written) when
    another commit took them or moved the position first."""

    @abstractmethod
    def append_stream_rows(self, dataset: str, body: str, rows: int) -> dict:
        """Buffer one append (``rows`` rows as JSON Lines in ``body``), durable on return:
        ``{"id", "dataset", "rows", "created_at"}``."""

    @abstractmethod
    def stream_rows(self, dataset: str, *, max_rows: int, skip: tuple[int, ...] = ()
                    ) -> list[dict]:  # fmt: skip
        """Buffered appends of ``dataset`` oldest first (``id`` order), whole, but for those whose
        id is in ``skip``: as many as reach ``max_rows`` rows (at least one), each with ``id``,
        ``rows``, ``body``, ``created_at``."""

    @abstractmethod
    def stream_backlog(self, dataset: str) -> dict:
        """``{"appends", "rows", "oldest"}`` of the buffer (``oldest`` None when empty)."""

    @abstractmethod
    def stream_offsets(self, dataset: str) -> list[dict]:
        """The sources of ``dataset`` by name: ``{"source", "position", "version", "rows",
        "updated_at"}`` (``rows``: how many of its rows the versions hold)."""

    @abstractmethod
    def record_stream_consumer(self, dataset: str, source: str, url: str, options: dict
                               ) -> None:  # fmt: skip
        """Record (or replace) how the consumer of ``source`` (its name) into ``dataset`` runs:
        the ``url`` it was given and its ``options`` (JSON-able), for ``modelloop up``."""

    @abstractmethod
    def stream_consumers(self) -> list[dict]:
        """Every recorded consumer by dataset and source: ``{"dataset", "source", "url",
        "options", "updated_at"}``. Deleting a dataset forgets its consumers."""
