"""Names and references: ``loans``, ``loans@3``, ``loans@latest``, ``loans@3..5`` (only the rows
versions 4 and 5 added), and time windows like ``7d``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelloop.common.durations import parse_time  # noqa: F401 - the data layer's name for it
from modelloop.errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: ASCII digits only: str.isdigit() also accepts '²' or '٣', which int() then refuses or misreads.
_NUMBER = re.compile(r"[0-9]{1,10}", re.ASCII)
#: Versions are stored as 32-bit integers; a larger number can never name one.
MAX_VERSION = 2**31 - 1
MAX_REF_LENGTH = 300


def check_name(name: str, what: str = "dataset") -> str:
    """A name safe to use anywhere (paths, URLs): letters, digits, '_', '-', '.', not '..'."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid {what} name {name!r}",
            hint="use 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    return name


def version_number(text: str, *, ref: str | None = None, hint: str | None = None) -> int | None:
    """``text`` as a version number (1 to :data:`MAX_VERSION`), or None when it is not one.

    Raises :class:`InvalidInput` for numbers that can never name a version (0, too large), so a
    caller that also accepts names (aliases) does not mistake ``0`` or ``99999999999`` for one.
    """
    where = f" in {ref!r}" if ref else ""
    if not isinstance(text, str):
        return None
    if text.startswith("-") and _NUMBER.fullmatch(text[1:]):
        raise InvalidInput(f"version {text}{where} is negative", hint=hint or "versions start at 1")
    if not text.isascii() or not text.isdigit():
        return None
    if not _NUMBER.fullmatch(text) or int(text) > MAX_VERSION:
        raise InvalidInput(f"version {text[:20]}{'…' if len(text) > 20 else ''}{where} is too "
                           "large", hint=hint or f"versions go up to {MAX_VERSION}")
    if int(text) < 1:
        raise InvalidInput(f"version {text}{where} does not exist", hint=hint or
                           "versions start at 1")
    return int(text)


@dataclass(frozen=True)
class Ref:
    """A parsed ``NAME[@VERSION]`` or ``NAME@AFTER..VERSION``.

    ``version`` None means latest. ``after`` set means only the rows added by the versions after
    ``after`` up to and including ``version`` (git's ``A..B``): versions are cumulative, so
    ``loans@5`` holds every row of ``loans@4`` and ``loans@4..5`` only the rows the fifth ingest
    added — what a model trained on ``loans@4`` has never seen.
    """

    name: str
    version: int | None = None
    after: int | None = None

    def __str__(self) -> str:
        head = f"{self.after}.." if self.after is not None else ""
        return f"{self.name}@{head}{self.version if self.version is not None else 'latest'}"


def parse_ref(text: str | Ref, what: str = "dataset") -> Ref:
    """``NAME``, ``NAME@3``, ``NAME@latest``, ``NAME@3..5``, ``NAME@3..`` / ``NAME@3..latest``."""
    if isinstance(text, Ref):
        return text
    if not isinstance(text, str):
        raise InvalidInput(f"a {what} reference must be text such as 'loans@3', not "
                           f"{type(text).__name__} {text!r}"[:200])
    if len(text) > MAX_REF_LENGTH:
        raise InvalidInput(f"the {what} reference {text[:40]!r}… is {len(text)} characters long",
                           hint=f"a reference is NAME@VERSION, at most {MAX_REF_LENGTH} characters")
    name, sep, tail = text.partition("@")
    check_name(name, what)
    usage = f"use {name}@3 (a version), {name}@latest, or {name}@3..5 (the rows versions 4 to 5 added)"
    if not sep or tail == "latest":
        return Ref(name)
    lo, dots, hi = tail.partition("..")
    if not dots:
        number = version_number(tail, ref=text, hint=usage)
        if number is None:
            raise InvalidInput(f"invalid version {tail!r} in {text!r}", hint=usage)
        return Ref(name, number)
    after = version_number(lo, ref=text, hint=usage) if lo else None
    if after is None:
        raise InvalidInput(
            f"invalid range {tail!r} in {text!r}: it must start with a version number",
            hint=f"{name}@3..5 is the rows versions 4 and 5 added; {name}@5 is everything up to 5")
    if hi in ("", "latest"):
        return Ref(name, None, after)
    end = version_number(hi, ref=text, hint=usage)
    if end is None:
        raise InvalidInput(f"invalid range {tail!r} in {text!r}", hint=usage)
    if end <= after:
        raise InvalidInput(
            f"{text!r} names no rows: a range A..B holds the rows added after version A up to B",
            hint=f"use {name}@{end - 1}..{end} for the rows version {end} added"
            if end > 1 else f"use {name}@1 for the rows of the first version")
    return Ref(name, end, after)
