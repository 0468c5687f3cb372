"""``--executor``: the choices come from the executor registry (:mod:`modelloop.common.executors`).

Earlier names (``process``) are accepted and turned into today's; ``--help`` lists today's only.
"""

from __future__ import annotations

import contextlib

import click

from modelloop.common import executors
from modelloop.errors import InvalidInput


class ExecutorChoice(click.Choice):
    name = "executor"

    def __init__(self):
        super().__init__([])

    @property
    def choices(self):
        """Read when used, so an executor registered after the CLI was imported is offered."""
        return tuple(executors.names())

    @choices.setter
    def choices(self, _value) -> None:
        pass

    def convert(self, value, param, ctx):
        with contextlib.suppress(InvalidInput):  # click's own message lists the choices
            value = executors.canonical(value)
        return super().convert(value, param, ctx)


def executor_option(default: str, help: str):
    kinds = "; ".join(f"{name}: {cls.summary}" for name, cls in executors.EXECUTORS.items())
    return click.option("--executor", type=ExecutorChoice(), default=default, show_default=True,
                        help=f"{help}: {kinds}.")
