"""Where work runs: one vocabulary for pipelines (steps) and batch transform (chunks).

``local`` (this process, one at a time), ``threads``, ``processes`` (a warm pool of workers),
``ray``. To add one, write a module here with an :class:`Executor` subclass decorated with
``@register`` and import it below; the CLI's ``--executor`` choices come from :func:`names`.
"""

from modelloop.common.executors import local, processes, ray, threads  # noqa: F401 - register
from modelloop.common.executors.base import Executor, map_bounded
from modelloop.common.executors.registry import EXECUTORS, canonical, create, names, register

__all__ = ["EXECUTORS", "Executor", "canonical", "create", "map_bounded", "names", "register"]
