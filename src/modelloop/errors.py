"""Errors a person can act on.

Every mistake a user can make is raised as a :class:`ModelloopError` subclass whose message names
what is wrong and whose ``hint`` says how to fix it. Faces turn them into one line on stderr and a
non-zero exit (CLI) or a 4xx JSON body (HTTP); anything else is a bug in modelloop.
"""

from __future__ import annotations


class ModelloopError(Exception):
    """Base class for errors caused by input, configuration or state the user controls."""

    #: HTTP status a face should answer with.
    status = 400
    #: Process exit code a CLI should use.
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class InvalidInput(ModelloopError):
    """A value given by the user is malformed (a name, a reference, an option)."""


class NotFound(ModelloopError):
    """A named thing (workspace, dataset, version, file, job, model) does not exist."""

    status = 404


class AlreadyExists(ModelloopError):
    status = 409


class SchemaMismatch(ModelloopError):
    """Incoming data does not fit the schema already recorded for a dataset."""

    status = 422


class IntegrityError(ModelloopError):
    """Stored content no longer matches the hash it was recorded with (tampering or corruption)."""

    status = 500


class StoreVersionError(ModelloopError):
    """The metadata store was written by a newer modelloop than this one."""

    status = 500


class ConfigError(ModelloopError):
    """The workspace configuration is missing or wrong."""


class NotApproved(InvalidInput):
    """A model version that is not approved was asked to serve or batch-score (409)."""

    status = 409


class UntrustedCode(ModelloopError):
    """A model holds code (a pickle, a function reference, an MLflow loader) that nobody trusted.

    Loading such a model runs whatever its author wrote; it needs the user's explicit trust
    (``--trust-pickle`` with ``--reason``), recorded in the model's history (403)."""

    status = 403
