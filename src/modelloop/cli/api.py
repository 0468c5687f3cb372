"""``modelloop api serve``: the control-plane HTTP API (``/api/v1``) over this workspace."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, pass_ctx


def _listen(command):
    """Where ``api serve`` and ``ui`` listen (the same server: the API with the console)."""
    for option in reversed((
        click.option("--host", default=None, help="Address to listen on ([api] host; 127.0.0.1)."),
        click.option("--port", type=int, default=None,
                     help="Port to listen on ([api] port; 8090; 0: any free port)."),
        click.option("--tls-cert", default=None, help="PEM certificate for HTTPS ([api] tls_cert)."),
        click.option("--tls-key", default=None, help="PEM private key for HTTPS ([api] tls_key)."),
    )):  # fmt: skip
        command = option(command)
    return command


@click.group()
def api() -> None:
    """The control-plane HTTP API: every operation of the workspace, for remote CLIs and SDKs."""


@api.command("serve")
@_listen
@pass_ctx
def serve(c: Context, host: str | None, port: int | None, tls_cert: str | None,
          tls_key: str | None) -> None:  # fmt: skip
    """Serve the API until SIGTERM or Ctrl-C. Every route needs an API token (modelloop token
    create) unless [api] auth = "none", which is allowed on a loopback address only."""
    run_server(c, host, port, tls_cert, tls_key)


def run_server(c: Context, host, port, tls_cert, tls_key) -> None:
    """The API with the web console at ``/ui/`` (``api serve``, ``ui``, ``up --api``)."""
    from modelloop.api.server import serve as run
    from modelloop.api.settings import ApiSettings
    from modelloop.ui.app import PREFIX, create_app

    ws = c.local_ws
    settings = ApiSettings.from_config(ws.config, host=host, port=port, tls_cert=tls_cert,
                                       tls_key=tls_key)  # fmt: skip
    run(ws, settings, say=lambda line: render.out.print(line, markup=False),
        app=create_app(ws, settings), console=PREFIX)  # fmt: skip


@click.command("ui")
@_listen
@pass_ctx
def ui(c: Context, host: str | None, port: int | None, tls_cert: str | None,
       tls_key: str | None) -> None:  # fmt: skip
    """Serve the web console (at /ui/, with the API it reads) until SIGTERM or Ctrl-C. Sign in
    with an API token (modelloop token create --role viewer); the role decides what it shows."""
    run_server(c, host, port, tls_cert, tls_key)
