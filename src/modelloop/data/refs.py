"""Names and references: ``loans``, ``loans@3``, ``loans@latest``, and time windows like ``7d``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelloop.errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_name(name: str, what: str = "dataset") -> str:
    """A name safe to use anywhere (paths, URLs): letters, digits, '_', '-', '.', not '..'."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid {what} name {name!r}",
            hint="use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True)
class Ref:
    """A parsed ``NAME[@VERSION]``; ``version`` None means latest."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else 'latest'}"


def parse_ref(text: str, what: str = "dataset") -> Ref:
    name, sep, tail = str(text).partition("@")
    check_name(name, what)
    if not sep or tail == "latest":
        return Ref(name)
    if tail.isdigit() and int(tail) > 0:
        return Ref(name, int(tail))
    raise InvalidInput(
        f"invalid version {tail!r} in {text!r}",
        hint=f"use {name}@3 (a version number) or {name}@latest",
    )


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time: a duration back from now (``7d``, ``12h``, ``30m``) or an ISO date/time."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(str(text))
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput(
            f"cannot read {text!r} as a time",
            hint="use a duration such as 7d, 12h, 30m, or an ISO date such as 2026-05-03",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
