"""`/docs` (Swagger UI) and `/redoc` served with their own JavaScript and CSS.

FastAPI's default pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs, so on a
machine without internet they are blank. The `fastapi-offline` wheel ships those dist files
(Swagger UI and ReDoc, with their licences); each service mounts them under `ASSETS` and its
pages reference only its own origin. Create the app with `docs_url=None, redoc_url=None`.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
DIST = resources.files("fastapi_offline") / "static"  # swagger-ui-bundle.js, .css, redoc, icon
# The pages' inline start-up scripts and injected styles are allowed; anything from another
# origin is not (ReDoc's side menu would otherwise fetch its vendor's logo from a CDN).
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def install_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, every file from this service."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with docs_url=None, redoc_url=None: these replace them")
    app.mount(ASSETS, StaticFiles(directory=str(DIST)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")  # behind a proxy that strips a prefix
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # no badge that sends the spec to the public online validator
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page
