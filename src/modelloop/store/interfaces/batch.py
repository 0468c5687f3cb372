"""Records of batch transforms: one per finished chunk, so that a rerun resumes."""

from __future__ import annotations

from abc import ABC, abstractmethod


class BatchStore(ABC):
    """A transform is known by its ``transform_key`` (model version, inputs, output, options),
    not by the job running it: a rerun is a new job with the same key."""

    @abstractmethod
    def record_transform_chunk(
        self,
        *,
        transform_key: str,
        chunk: int,
        job_id: int,
        rows: int,
        error_rows: int,
        input_bytes: int,
        part_digest: str,
        errors_digest: str | None,
    ) -> bool:
        """Record a finished chunk; False if it was already recorded (the first record wins)."""

    @abstractmethod
    def transform_chunks(self, transform_key: str) -> dict[int, dict]:
        """chunk index -> its record, for every finished chunk of the transform."""

    @abstractmethod
    def transform_progress(self, transform_key: str) -> dict:
        """Totals over the finished chunks: ``{"chunks", "rows", "error_rows", "input_bytes"}``
        (zeros for a transform with none)."""
