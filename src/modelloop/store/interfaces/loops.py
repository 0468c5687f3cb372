"""Records of applied loops (``modelloop loop apply``)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class LoopStore(ABC):
    """One row per applied loop, by name; ``spec`` and ``resources`` are JSON values read back
    decoded: ``{"name", "spec", "base_dir", "hash", "resources", "applied_at"}``."""

    @abstractmethod
    def put_loop(self, name: str, *, spec: dict, base_dir: str, hash: str,
                 resources: dict) -> dict:  # fmt: skip
        """Create or replace the loop's row (``applied_at``: now) in one transaction; returns
        it."""

    @abstractmethod
    def get_loop(self, name: str) -> dict | None:
        """The loop's row, or None."""

    @abstractmethod
    def list_loops(self) -> list[dict]:
        """Every applied loop, by name."""

    @abstractmethod
    def delete_loop(self, name: str) -> bool:
        """Remove the loop's row; whether there was one."""
