"""Durations and points in time as people type them: ``90d``, ``12h``, ``30m``, or ISO times.

One reader for every option that takes one (``--since``, ``--expires``, monitor windows), so
they all accept the same spellings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from modelloop.errors import InvalidInput

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """``90d`` -> 90 days; anything else is an :class:`InvalidInput` naming ``what``."""
    m = DURATION.match(str(text))
    if not m:
        raise InvalidInput(f"cannot read {what} {text!r}", hint="use a duration such as 30m, 12h, 90d or 4w")
    try:
        return timedelta(**{UNITS[m.group(2)]: float(m.group(1))})
    except OverflowError:
        raise InvalidInput(f"{what} {text!r} is too long", hint="use a duration such as 90d") from None


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time: a duration back from now (``7d``, ``12h``, ``30m``) or an ISO date/time."""
    now = now or datetime.now(UTC)
    m = DURATION.match(str(text))
    if m:
        try:
            return now - timedelta(**{UNITS[m.group(2)]: float(m.group(1))})
        except (OverflowError, ValueError):
            raise InvalidInput(f"the duration {text!r} reaches before the year 1",
                               hint="use a shorter duration such as 7d or 52w") from None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput(
            f"cannot read {text!r} as a time",
            hint="use a duration such as 7d, 12h, 30m, or an ISO date such as 2026-05-03",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
