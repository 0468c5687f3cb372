"""Records of which artifact blobs are referenced, and which an unfinished write is putting.

A writer lists the blobs it is about to upload under a transaction name before uploading them,
and the record that references them clears that list in the same transaction. A crash therefore
leaves a list that names exactly what to clean up, and garbage collection never deletes a blob
that a record, or a live writer, still refers to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class BlobRecordStore(ABC):
    @abstractmethod
    def add_pending_blobs(self, txn: str, digests: Iterable[str]) -> None:
        """Note that writer ``txn`` (on this host and process) is putting these blobs."""

    @abstractmethod
    def pending_transactions(self) -> list[dict]:
        """Unfinished writers, in the order they started:
        ``{"txn", "host", "pid", "created_at", "digests": [...]}``."""

    @abstractmethod
    def drop_pending(self, txn: str) -> None:
        """Forget writer ``txn``'s list (it finished, or was cleaned up)."""

    @abstractmethod
    def referenced_digests(
        self, digests: Iterable[str], *, ignore_txn: str | None = None
    ) -> set[str]:
        """Those of ``digests`` that some record, or another writer's pending list (other than
        ``ignore_txn``), refers to."""
