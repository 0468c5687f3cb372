"""Records of the model registry: models, their immutable versions, aliases and history."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ModelRegistryStore(ABC):
    """Every change of a version's status or of an alias appends a history line and an event in
    the same transaction, so "which version was champion on 3 May" always has an answer."""

    @abstractmethod
    def register_model_version(
        self, *, name: str, files: list[dict], manifest: dict, package_hash: str, flavor: str,
        task: str | None, job_id: int | None, actor: str, description: str | None = None,
        holds_code: bool = False, trust: dict | None = None,
    ) -> dict:  # fmt: skip
        """Create the model if new and add its next version (status ``pending``) with its files
        (``{"path", "digest", "size"}``), a ``registered`` history line and a
        ``model.registered`` event. ``trust`` ({"actor", "reason"}) records that a person
        trusted the code its files hold. Returns the version as :meth:`get_model_version`."""

    @abstractmethod
    def trust_model_version(self, name: str, version: int, *, actor: str, reason: str) -> dict:
        """Record that a person trusts the code a version's files hold (history and event);
        :class:`~modelloop.errors.InvalidInput` if it already is trusted."""

    @abstractmethod
    def get_model(self, name: str) -> dict | None:
        """``{"id", "name", "created_at", "description"}``, or None."""

    @abstractmethod
    def list_models(self, *, limit: int | None = None, offset: int = 0) -> list[dict]:
        """The models by name, each with its ``latest_version`` and ``aliases`` (alias ->
        version); a page of ``limit`` after ``offset`` when given (read by the database, the
        page's versions and aliases in one query each: a workspace may hold thousands)."""

    @abstractmethod
    def get_model_version(self, name: str, version: int | None = None) -> dict | None:
        """One version (the latest when ``version`` is None) with its decoded ``manifest``, or
        None."""

    @abstractmethod
    def list_model_versions(self, name: str, *, limit: int | None = None, offset: int = 0,
                            newest_first: bool = False) -> list[dict]:  # fmt: skip
        """The model's versions, oldest first (or newest first); a page of ``limit`` after
        ``offset`` when given (read by the database: a model may have thousands)."""

    @abstractmethod
    def model_aliases(self, name: str) -> dict[str, int]:
        """alias -> version, by alias."""

    @abstractmethod
    def model_files(self, name: str, version: int) -> list[dict]:
        """The version's files (``path``, ``digest``, ``size``), by path."""

    @abstractmethod
    def set_model_status(
        self, name: str, version: int, status: str, *, actor: str, reason: str | None,
        allowed_from: tuple[str, ...],
    ) -> dict:  # fmt: skip
        """Move a version to ``status`` if its current status is in ``allowed_from``
        (:class:`~modelloop.errors.InvalidInput` otherwise, or if it already is ``status``),
        with history and a ``model.<status>`` event. Returns the version."""

    @abstractmethod
    def move_alias(
        self, name: str, alias: str, version: int | None, *, actor: str, reason: str | None,
        action: str = "alias_set", expected: int | None = -1,
        allowed_status: tuple[str, ...] | None = None,
    ) -> int | None:  # fmt: skip
        """Point ``alias`` at ``version`` (None removes it) and return the previous version.

        With ``expected`` (not -1), only if the alias currently points there — a compare-and-set
        for rollbacks (:class:`~modelloop.errors.AlreadyExists` otherwise). With
        ``allowed_status``, only if the version's status is one of them, checked in the same
        transaction (:class:`~modelloop.errors.InvalidInput` otherwise). Pointing an alias where
        it already points changes nothing and records nothing."""

    @abstractmethod
    def model_history(self, name: str, *, limit: int | None = None, offset: int = 0,
                      newest_first: bool = False) -> list[dict]:  # fmt: skip
        """The model's history lines, oldest first (or newest first; a page of ``limit`` after
        ``offset`` when given): ``action``, ``version``, ``alias``, ``from_version``, ``actor``,
        ``reason``, ``time``."""

    @abstractmethod
    def mark_model_deployed(self, name: str, version: int, *, actor: str, where: str) -> None:
        """Record a deployment (the first one's time is kept: such a version is kept for audit)."""

    @abstractmethod
    def delete_model_version(
        self, name: str, version: int, *, actor: str, reason: str | None
    ) -> None:
        """Delete a version and its file records; refused (:class:`~modelloop.errors.InvalidInput`)
        for a deployed or aliased version."""
