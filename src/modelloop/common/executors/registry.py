"""The executors by name. An executor is one module in this package, registered by ``@register``.

Names are what users type (``--executor``, ``executor=``); each executor's ``aliases`` are earlier
names that still work but are not offered.
"""

from __future__ import annotations

from modelloop.common.executors.base import Executor
from modelloop.errors import InvalidInput

EXECUTORS: dict[str, type[Executor]] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type[Executor]) -> type[Executor]:
    """Make ``cls`` available by its ``name`` (and its ``aliases``)."""
    EXECUTORS[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def names() -> list[str]:
    """The executors' names, as offered to users."""
    return list(EXECUTORS)


def canonical(name: str) -> str:
    """The executor's name for ``name`` (which may be an alias); InvalidInput when unknown."""
    name = _ALIASES.get(name, name)
    if name not in EXECUTORS:
        raise InvalidInput(f"unknown executor {name!r}", hint=f"use {', '.join(names())}")
    return name


def create(name: str | Executor, concurrency: int | None = None, **options) -> Executor:
    """An executor by name (an :class:`Executor` is returned as it is)."""
    if isinstance(name, Executor):
        return name
    return EXECUTORS[canonical(name)](concurrency, **options)
