"""``--executor``: the choices come from the executor registry (:mod:`modelloop.common.executors`).

Earlier names (``process``) are accepted and turned into today's; ``--help`` lists today's only.
A command that can use only some executors (jobs: ``local`` or ``ray``) offers those of them.
"""

from __future__ import annotations

import contextlib

import click

from modelloop.common import executors
from modelloop.errors import InvalidInput


class ExecutorChoice(click.Choice):
    name = "executor"

    def __init__(self, only: tuple[str, ...] | None = None):
        super().__init__([])
        self.only = only

    @property
    def choices(self):
        """Read when used, so an executor registered after the CLI was imported is offered."""
        return tuple(n for n in executors.names() if self.only is None or n in self.only)

    @choices.setter
    def choices(self, _value) -> None:
        pass

    def convert(self, value, param, ctx):
        with contextlib.suppress(InvalidInput):  # click's own message lists the choices
            value = executors.canonical(value)
        return super().convert(value, param, ctx)


def executor_option(default: str | None, help: str, *, only: tuple[str, ...] | None = None,
                    summaries: dict[str, str] | None = None):
    """``--executor``; ``only`` limits the choices, ``summaries`` says what some of them mean
    for this command (default: the executor's own summary)."""
    choice = ExecutorChoice(only)
    kinds = "; ".join(f"{name}: {(summaries or {}).get(name, cls.summary)}"
                      for name, cls in executors.EXECUTORS.items() if name in choice.choices)
    return click.option("--executor", type=choice, default=default,
                        show_default=default is not None, help=f"{help}: {kinds}.")
