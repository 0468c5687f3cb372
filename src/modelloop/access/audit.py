"""The audit log: one append-only record per mutating call, from the API and the local CLI.

Who (a token's name, or the OS user), what (``models.approve``), on what, with which arguments
(secrets redacted), when, and how it ended. Records are only ever appended: the store has no
method to change one and the database refuses UPDATE and DELETE on the table.
"""

from __future__ import annotations

import re
from datetime import datetime

from modelloop.common.durations import parse_time
from modelloop.errors import InvalidInput

#: Argument names whose values are secrets: never written to the log.
SECRET_NAME = re.compile(r"token|passw|secret|authorization|credential|cookie|(^|[_-])key$", re.I)
#: Secrets that turn up inside other values (a command line, a URL).
SECRET_TEXT = [
    (re.compile(r"ml_[0-9]+_[A-Za-z0-9_-]{20,}"), "ml_***"),  # our API tokens
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1***"),
    (re.compile(r"(://[^/:@\s]+:)[^/@\s]+@"), r"\1***@"),  # user:password@ in URLs
]
REDACTED = "***"
SOURCES = ("api", "cli", "sdk")
ACTOR_KINDS = ("token", "user")
#: Most records one call returns.
MAX_LIMIT = 1000
_MAX_TEXT = 2000


def redact(value, *, _depth: int = 0):
    """``value`` with every secret replaced: values under secret-looking keys, and tokens,
    bearer credentials and URL passwords inside strings. Long strings are cut."""
    if _depth > 20:
        return REDACTED
    if isinstance(value, dict):
        return {str(k): REDACTED if SECRET_NAME.search(str(k)) and v not in (None, False, "")
                else redact(v, _depth=_depth + 1) for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth=_depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def outcome_of(exc: BaseException | None) -> str:
    """``ok``, or ``error: Type: message`` (redacted, cut)."""
    if exc is None:
        return "ok"
    return redact(f"error: {type(exc).__name__}: {exc}")[:500]


def record(store, *, actor: str, actor_kind: str, action: str, subject: str | None = None,
           arguments: dict | None = None, outcome: str = "ok", source: str = "sdk") -> int:  # fmt: skip
    """Append one audit record (arguments redacted here, whoever calls); its id."""
    if actor_kind not in ACTOR_KINDS:
        raise InvalidInput(f"actor_kind {actor_kind!r} is not one of {', '.join(ACTOR_KINDS)}")
    if source not in SOURCES:
        raise InvalidInput(f"source {source!r} is not one of {', '.join(SOURCES)}")
    return store.append_audit(actor=actor, actor_kind=actor_kind, action=action,
                              subject=None if subject is None else redact(str(subject)),
                              arguments=redact(dict(arguments or {})), outcome=redact(outcome),
                              source=source)  # fmt: skip


class Audit:
    """The audit log of one workspace (``ws.audit``): append and read, nothing else."""

    def __init__(self, store):
        self.store = store

    def record(self, *, actor: str, actor_kind: str, action: str, subject: str | None = None,
               arguments: dict | None = None, outcome: str = "ok", source: str = "sdk") -> int:  # fmt: skip
        """Append one record; see :func:`record`."""
        return record(self.store, actor=actor, actor_kind=actor_kind, action=action,
                      subject=subject, arguments=arguments, outcome=outcome, source=source)  # fmt: skip

    def list(self, *, since: str | None = None, until: str | None = None,
             actor: str | None = None, action: str | None = None, source: str | None = None,
             limit: int = 100, offset: int = 0) -> list[dict]:  # fmt: skip
        """Records newest first. ``since``/``until``: ``1d``, ``12h`` or an ISO time;
        ``action``: exact, or a prefix ending in ``*`` (``models.*``); at most
        :data:`MAX_LIMIT` per call (page with ``offset``)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if offset < 0:
            raise InvalidInput(f"offset must be 0 or more, not {offset}")
        if source is not None and source not in SOURCES:
            raise InvalidInput(f"source {source!r} is not one of {', '.join(SOURCES)}")
        bounds: dict[str, datetime | None] = {
            "since": parse_time(since) if since else None,
            "until": parse_time(until) if until else None,
        }
        return self.store.list_audit(**bounds, actor=actor, action=action, source=source,
                                     limit=limit, offset=offset)  # fmt: skip
