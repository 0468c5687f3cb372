"""The control-plane API with the console mounted at ``/ui/`` (``modelloop api serve``, ``modelloop
ui``, ``modelloop up --api``).

The console is static files plus one route, ``/ui/session``: who the presented token is (name and
role), so the page can show only what the role may do. The API checks the role again on every
call; hiding a button is a courtesy, not the control.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from modelloop.api import auth as _auth
from modelloop.api.app import create_app as create_api
from modelloop.api.settings import ApiSettings

STATIC = Path(__file__).with_name("static")
PREFIX = "/ui"


class _Static(StaticFiles):
    """The console's files, never cached stale: a page and its modules change together on an
    upgrade, so the browser revalidates each (304 when unchanged)."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI) -> None:
    """Serve the console on ``app`` (an API app from :func:`modelloop.api.app.create_app`)."""
    api = app.state.api

    @app.get(f"{PREFIX}/session", include_in_schema=False)
    def session(request: Request):
        """The caller's name and role; 401 JSON for a token that is not valid, and no role
        (200) without a token, so a first visit shows the sign-in page without logging an
        error in the browser."""
        header = request.headers.get("authorization")
        if header is None and api.anonymous is None:
            return JSONResponse({"name": None, "role": None, "roles": list(_auth.ROLES),
                                 "anonymous": False})  # fmt: skip
        principal = api.auth.authenticate(api.ws, header, anonymous=api.anonymous)
        api.buckets.check(f"token:{principal.token_id or principal.name}")
        return JSONResponse({"name": principal.name, "role": principal.role,
                             "roles": list(_auth.ROLES), "anonymous": header is None})  # fmt: skip

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(f"{PREFIX}/")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)  # browsers ask for one on every page of the origin

    app.mount(PREFIX, _Static(directory=STATIC, html=True), name="console")


def create_app(ws, settings: ApiSettings | None = None) -> FastAPI:
    """The API of ``ws`` with the console at ``/ui/``."""
    app = create_api(ws, settings)
    mount(app)
    return app
