"""``modelloop api serve``: the control-plane API in one uvicorn process over a workspace."""

from __future__ import annotations

import socket

from modelloop.api.settings import ApiSettings, check_bind


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: a free one, read back from the socket)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                           hint="choose another --port (0: any free port)") from None  # fmt: skip
    return sock


def url_of(settings: ApiSettings, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if settings.tls else 'http'}://{shown}:{port}"


def build(ws, settings: ApiSettings, *, app=None):
    """The uvicorn server of the API of ``ws`` (or of ``app``, the API with more mounted on it:
    the console), the socket it will listen on and its URL; a non-loopback address without
    authentication is refused first (:func:`check_bind`)."""
    import uvicorn

    from modelloop.api.app import create_app

    check_bind(settings)
    app = app if app is not None else create_app(ws, settings)
    sock = bind(settings.host, settings.port)
    config = uvicorn.Config(
        app, ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key, log_level="warning",
        server_header=False, timeout_graceful_shutdown=30, access_log=False, lifespan="off",
    )  # fmt: skip
    return uvicorn.Server(config), sock, url_of(settings, sock)


def serve(ws, settings: ApiSettings, *, say=print, app=None, console: str | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C (requests in flight are answered first); ``console``: the
    path the web console is mounted at on ``app``, announced with the API."""
    from modelloop.api.app import PREFIX

    server, sock, url = build(ws, settings, app=app)
    auth = "tokens" if settings.auth == "token" else "none (local caller is admin)"
    say(f"modelloop API on {url}{PREFIX} (docs: {url}{PREFIX}/docs; authentication: {auth})")
    if console:
        say(f"modelloop console on {url}{console}/")
    server.run(sockets=[sock])
