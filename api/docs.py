"""Swagger UI at ``/docs``, served from files shipped in this package: no CDN at run time.

FastAPI's built-in ``/docs`` page loads Swagger UI's JavaScript and CSS from a CDN, so on a
machine without internet it is blank. The app is built with ``docs_url=None, redoc_url=None``
and :func:`install_docs` adds the page back, with its assets at :data:`ASSETS_URL` (the files in
``api/static/swagger-ui``, vendored unchanged from ``swagger-ui-dist``: see
``api/static/VENDORED.md``). ReDoc is not served: its standalone bundle would be one more
megabyte of vendored JavaScript for a second view of the same schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"

SWAGGER_UI_PARAMETERS = {
    # The validator badge would send the schema to validator.swagger.io; no third host, ever.
    "validatorUrl": None,
    # Keep the bearer token across page reloads while trying the API out.
    "persistAuthorization": True,
}


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at :data:`DOCS_URL` on ``app`` with local assets.

    ``app`` must be built with ``docs_url=None`` (else FastAPI's CDN page answers first). Adds
    the page, the OAuth2 redirect page Swagger UI expects beside it, and a static mount for the
    vendored files; none of them appears in the OpenAPI schema.
    """
    if app.openapi_url is None:
        raise ValueError("the docs need the OpenAPI schema; the app has openapi_url=None")
    openapi_url = app.openapi_url
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} · API docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
