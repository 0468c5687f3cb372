"""Helpers for pipeline tests: the ``runs`` commands, driven as a user would."""

from __future__ import annotations

import pytest


@pytest.fixture
def runs_cli(cli):
    """``modelloop -w WS ARGS…``: the product's own command (``python -m modelloop``)."""

    def run(*args, ws, check=True, env=None):
        return cli("-w", ws.root, *args, check=check, env=env)

    return run
