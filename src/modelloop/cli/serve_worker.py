"""The app of each ``modelloop serve --workers/--max-workers`` worker process.

uvicorn's supervisor spawns the workers and unpickles this factory in each one, so it lives apart
from the click commands (importing ``cli/endpoint.py`` first would import the whole CLI, and
``cli.main`` imports its commands back). The worker opens the workspace itself.
"""

from __future__ import annotations


def server_app(root: str, default_endpoint: str | None, metrics_seconds: float, board):
    """Called in the worker process after the spawn, with the worker board."""
    from modelloop.workspace import Workspace

    return Workspace(root).endpoints.server_app(default_endpoint=default_endpoint, board=board,
                                                metrics_seconds=metrics_seconds)
