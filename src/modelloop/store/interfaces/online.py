"""Online learning: durable labelled events per endpoint, and online variants' models."""

from __future__ import annotations

from abc import ABC, abstractmethod


class OnlineStore(ABC):
    """Labelled events get a per-endpoint ``seq`` (1, 2, …) in the order they were appended;
    seqs become visible in order with no gap (a reader that saw seq N never later finds a new
    seq below N). An online variant's row holds its learner's checkpoint and published model."""

    @abstractmethod
    def append_online_events(
        self, endpoint: str, events: list[dict], rejected: int = 0
    ) -> list[int]:
        """Store ``events`` (``{"features": dict, "label", "time"?, "inference_id"?}``) in one
        transaction, durable when this returns, and count ``rejected`` refused ones; their seqs."""

    @abstractmethod
    def read_online_events(self, endpoint: str, after_seq: int, limit: int) -> list[dict]:
        """Up to ``limit`` events with seq > ``after_seq``, in seq order:
        ``{"seq", "time", "features", "label", "inference_id"}``."""

    @abstractmethod
    def online_stream(self, endpoint: str) -> dict:
        """``{"endpoint", "last_seq", "rejected"}`` (zeros for an endpoint with no event)."""

    @abstractmethod
    def count_online_rejected(self, endpoint: str, count: int) -> None:
        """Add ``count`` to the endpoint's refused events (bad input found by the learner)."""

    @abstractmethod
    def save_online_model(
        self,
        endpoint: str,
        variant: str,
        *,
        applied_seq: int,
        model: bytes,
        state: bytes | None,
        info: dict,
    ) -> int:
        """Write a variant's checkpoint and published model in one transaction; the new
        revision (one more than the last)."""

    @abstractmethod
    def online_model_revision(self, endpoint: str, variant: str) -> int:
        """The variant's revision, 0 when nothing was published (one cheap query)."""

    @abstractmethod
    def get_online_model(self, endpoint: str, variant: str, *, state: bool = False) -> dict | None:
        """``{"endpoint", "variant", "revision", "applied_seq", "model", "info", "updated_at"}``
        (plus ``"state"`` when asked), or None."""
