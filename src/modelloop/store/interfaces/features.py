"""Records of feature set definitions (``modelloop features apply``)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class FeatureSetStore(ABC):
    """One row per feature set, by name: ``{"name", "version", "source", "spec", "hash",
    "created_at", "updated_at"}``, ``spec`` read back decoded."""

    @abstractmethod
    def put_feature_set(self, name: str, *, source: str, spec: dict, hash: str) -> dict:
        """Create the row (version 1) or, when ``hash`` differs from the stored one, replace its
        spec and add one to its version, in one transaction; the same hash changes nothing.
        Returns the row."""

    @abstractmethod
    def get_feature_set(self, name: str) -> dict | None:
        """The feature set's row, or None."""

    @abstractmethod
    def list_feature_sets(self) -> list[dict]:
        """Every feature set, by name."""

    @abstractmethod
    def delete_feature_set(self, name: str) -> bool:
        """Remove the row; whether there was one."""
