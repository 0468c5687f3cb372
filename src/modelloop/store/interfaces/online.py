"""Online learning: durable labelled events per endpoint, and online variants' models."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AlikeEvents:
    """Labelled events that all have the same feature names (``names``, in their order), every
    value a float, and no time or inference id: ``values`` holds the values event after event
    (``len(names)`` each), ``labels`` one per event. Intake hands the store its common request
    in this form, so the values it checked are packed from the same list, not scanned again."""

    names: tuple
    values: list
    labels: list

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class EventBatch:
    """Labelled events in seq order, as the learner reads them: a list per field, not a dict per
    event. Feature dicts of plain numbers are left alone by Python's garbage collector; a dict
    per event holding one is not, and a learner's read-ahead of 10,000 of them made it scan them
    again and again (measured: a fifth of the learner's overhead over River)."""

    seqs: list = field(default_factory=list)
    features: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    inference_ids: list = field(default_factory=list)
    times: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, part: slice) -> EventBatch:
        return EventBatch(self.seqs[part], self.features[part], self.labels[part],
                          self.inference_ids[part], self.times[part])  # fmt: skip

    def extend(self, other: EventBatch) -> None:
        for mine, theirs in zip(self._columns(), other._columns(), strict=True):
            mine.extend(theirs)

    def append(self, seq: int, features: dict, label, inference_id=None, time=None) -> None:
        self.seqs.append(seq)
        self.features.append(features)
        self.labels.append(label)
        self.inference_ids.append(inference_id)
        self.times.append(time)

    def _columns(self) -> tuple:
        return self.seqs, self.features, self.labels, self.inference_ids, self.times

    def rows(self) -> list[dict]:
        """``{"seq", "features", "label", "inference_id", "time"}`` per event."""
        return [{"seq": seq, "features": features, "label": label, "inference_id": inference_id,
                 "time": time} for seq, features, label, inference_id, time in zip(
                     *self._columns(), strict=True)]  # fmt: skip


class OnlineStore(ABC):
    """Labelled events get a per-endpoint ``seq`` (1, 2, …) in the order they were appended;
    seqs become visible in order with no gap (a reader that saw seq N never later finds a new
    seq below N). An online variant's row holds its learner's checkpoint and published model."""

    @abstractmethod
    def append_online_events(
        self, endpoint: str, events: list[dict] | AlikeEvents, rejected: int = 0
    ) -> list[int]:
        """Store ``events`` (``{"features": dict, "label", "time"?, "inference_id"?}``, or
        :class:`AlikeEvents`) in one transaction, durable when this returns, and count
        ``rejected`` refused ones; their seqs."""

    @abstractmethod
    def read_online_events(self, endpoint: str, after_seq: int, limit: int) -> list[dict]:
        """Up to ``limit`` events with seq > ``after_seq``, in seq order:
        ``{"seq", "time", "features", "label", "inference_id"}``."""

    @abstractmethod
    def read_online_batch(self, endpoint: str, after_seq: int, limit: int) -> EventBatch:
        """:meth:`read_online_events` as an :class:`EventBatch` (what the learner reads)."""

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
        term: int | None = None,
    ) -> int:
        """Write a variant's checkpoint and published model in one transaction; the new
        revision (one more than the last). With ``term`` (the writer's lease term, a fencing
        token) the write is refused with :class:`~modelloop.errors.Conflict` when the row was
        written under a higher term: a learner that lost its lease to another one."""

    @abstractmethod
    def online_model_revision(self, endpoint: str, variant: str) -> int:
        """The variant's revision, 0 when nothing was published (one cheap query)."""

    @abstractmethod
    def get_online_model(self, endpoint: str, variant: str, *, state: bool = False) -> dict | None:
        """``{"endpoint", "variant", "revision", "applied_seq", "model", "info", "updated_at"}``
        (plus ``"state"`` when asked), or None."""
