"""Interactive docs at ``/api/v1/docs``, served offline: Swagger UI's files come from the
``swagger-ui-bundle`` package, so the page works on a machine without the internet (FastAPI's
default page loads them from a CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.staticfiles import StaticFiles


def install(app: FastAPI, prefix: str) -> None:
    import swagger_ui_bundle

    static = f"{prefix}/docs/static"
    app.mount(static, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="api-docs")

    @app.get(f"{prefix}/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: docs",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
        )
