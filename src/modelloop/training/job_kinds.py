"""The job-kind registry: what each kind of job (``train``, ``transform``, ``monitor``, …) runs.

A kind is a function ``run(ctx: JobContext, spec: dict) -> None``. The package that owns it
registers it where it is defined::

    @register_job_kind("transform")
    def run_transform_job(ctx, spec): ...

and the composition root (:mod:`modelloop.workspace`) imports those modules, so the kinds exist
in the process that submits a job and in the process that runs it. The registry sits in the
domain layer so that every package above it can register here without knowing the others.

Kinds from outside the package (a plugin, a test suite's ``sleep`` and ``fail``) are named in
``$MODELLOOP_JOB_KINDS``: comma-separated ``module:function`` or ``path/to/file.py:function``
entries, each a function called once, with no arguments, that registers its kinds. The variable
is read in every process that looks a kind up, so a worker started with it finds them too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from modelloop.errors import InvalidInput

#: Plugins: functions that register job kinds, named as ``module:function`` or ``file.py:function``.
ENV_PLUGINS = "MODELLOOP_JOB_KINDS"

JobFunction = Callable[[Any, dict], None]  # (JobContext, spec)

_KINDS: dict[str, JobFunction] = {}
_loaded_plugins: set[str] = set()


def register_job_kind(kind: str, run: JobFunction | None = None):
    """Register ``run`` as what a job of ``kind`` does; usable as a decorator.

    Registering the same function again is a no-op (a module imported twice); another function
    under a taken name is refused, so two packages cannot silently shadow each other.
    """

    def register(function: JobFunction) -> JobFunction:
        known = _KINDS.get(kind)
        if known is not None and _qualname(known) != _qualname(function):
            raise ValueError(f"job kind {kind!r} is already registered by {_qualname(known)}")
        _KINDS[kind] = function
        return function

    return register if run is None else register(run)


def job_kind(kind: str) -> JobFunction:
    """The function a job of ``kind`` runs; :class:`InvalidInput` naming the known kinds if none."""
    _load_plugins()
    try:
        return _KINDS[kind]
    except KeyError:
        raise InvalidInput(
            f"unknown job kind {kind!r}",
            hint=f"known kinds: {', '.join(sorted(_KINDS))}; a kind is registered with "
            f"register_job_kind (by its package, or by a plugin named in ${ENV_PLUGINS})",
        ) from None


def job_kinds() -> list[str]:
    """The registered kinds' names."""
    _load_plugins()
    return sorted(_KINDS)


def _load_plugins() -> None:
    from modelloop.common.loading import load_callable

    for entry in os.environ.get(ENV_PLUGINS, "").split(","):
        entry = entry.strip()
        if entry and entry not in _loaded_plugins:
            load_callable(entry, what=f"job kinds plugin (${ENV_PLUGINS})")()
            _loaded_plugins.add(entry)


def _qualname(function: JobFunction) -> str:
    return f"{function.__module__}.{getattr(function, '__qualname__', function)}"
