"""What every command shares: the :class:`Context` (the workspace, opened on first use), the
decorator that passes it, and the ``--json`` option. Apart from ``main.py`` so that command
modules import it without importing the command group that imports them."""

from __future__ import annotations

import click


class Context:
    """What every command gets: the workspace location, opened on first use."""

    def __init__(self, workspace: str | None):
        self.workspace_path = workspace
        self._ws = None

    @property
    def ws(self):
        if self._ws is None:
            from modelloop.workspace import Workspace

            self._ws = Workspace(self.workspace_path)
        return self._ws

    def close(self) -> None:
        """Close the workspace if a command opened it (its store's connections)."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None


pass_ctx = click.make_pass_decorator(Context)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
)
