"""What every command shares: the :class:`Context` (the workspace, opened on first use), the
decorator that passes it, and the ``--json`` option. Apart from ``main.py`` so that command
modules import it without importing the command group that imports them."""

from __future__ import annotations

import click


class Context:
    """What every command gets: the workspace, opened on first use: the local one (found from
    ``--workspace``, ``$MODELLOOP_HOME`` or the current folder), or, when ``$MODELLOOP_URL`` is
    set, the one behind that modelloop API (``$MODELLOOP_TOKEN`` or ``modelloop login``'s token)."""

    def __init__(self, workspace: str | None):
        self.workspace_path = workspace
        self._ws = None

    @property
    def remote(self) -> bool:
        """Whether commands go through the API (``$MODELLOOP_URL``) instead of a local store."""
        import os

        return bool(os.environ.get("MODELLOOP_URL"))

    @property
    def ws(self):
        if self._ws is None:
            from modelloop.workspace import Workspace

            if self.remote:
                from modelloop.remote.client import settings

                self._ws = Workspace.connect(*settings())
            else:
                self._ws = Workspace(self.workspace_path)
        return self._ws

    @property
    def local_ws(self):
        """The local workspace, for a command that runs only where the workspace's store is
        (servers, the controller): with ``$MODELLOOP_URL`` set it says so instead."""
        if self.remote:
            from modelloop.errors import InvalidInput

            raise InvalidInput(
                "this command runs only on the server's machine, on the workspace itself "
                "(MODELLOOP_URL is set)",
                hint="run it there, or unset MODELLOOP_URL to use a local workspace",
            )
        return self.ws

    def prepare_job(self, kind: str, executor: str | None = None) -> None:
        """Before a command's checks: start the worker of the job it will run, where jobs run
        cold (:meth:`modelloop.Workspace.prepare_job`); nothing for a remote workspace."""
        if not self.remote:
            self.ws.prepare_job(kind, executor=executor)

    def close(self) -> None:
        """Close the workspace if a command opened it (its store's connections)."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None


pass_ctx = click.make_pass_decorator(Context)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
)
