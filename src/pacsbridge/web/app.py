"""create_app(context) → the FastAPI application: routers, pages, static files, error handler.

Around every request, outermost first: security headers (web/headers.py, even on a 500), the
request id and counter (web/requests.py), then Starlette's error middleware, then body budgets
(web/limits.py); every route checks that its integer ids are within a database integer
(``deps.ids_in_range``: 404, never an overflow).

No global app object: the composition root builds one per Context, so tests build as many
differently configured apps as they like. The Swagger UI is off (it loads assets from a CDN,
and hospital networks are closed); the OpenAPI schema stays at /api/v1/openapi.json.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pacsbridge import __version__
from pacsbridge.context import Context
from pacsbridge.web import deps, errors, health
from pacsbridge.web.api import dicomweb as dicomweb_api
from pacsbridge.web.api import imports as imports_api
from pacsbridge.web.api import launch as launch_api
from pacsbridge.web.api import retrievals as retrievals_api
from pacsbridge.web.api import staff as staff_api
from pacsbridge.web.headers import SecurityHeaders
from pacsbridge.web.limits import BodyLimits
from pacsbridge.web.pages import router as pages_router
from pacsbridge.web.pages import support as support_pages
from pacsbridge.web.pages import templating
from pacsbridge.web.requests import RequestIds

HERE = Path(__file__).parent


class _App(FastAPI):
    def build_middleware_stack(self):  # noqa: ANN202 - an ASGI app
        """Security headers and the request id outside ServerErrorMiddleware, so a 500
        carries them too."""
        return SecurityHeaders(RequestIds(super().build_middleware_stack()))


def create_app(context: Context) -> FastAPI:
    app = _App(
        title="pacsbridge",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        dependencies=[Depends(deps.ids_in_range)],
    )
    app.state.context = context
    app.state.templates = _templates(context)
    errors.install(app)
    app.add_middleware(BodyLimits, settings=context.settings)
    app.include_router(launch_api.router)
    app.include_router(imports_api.router)
    app.include_router(retrievals_api.router)
    app.include_router(staff_api.router)
    app.include_router(dicomweb_api.router, prefix="/dicomweb")
    app.include_router(dicomweb_api.router, prefix="/dicomweb/t/{token}", include_in_schema=False)
    app.include_router(pages_router)
    support_pages.install(app)  # /support/: the support console (docs/support.md)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(health.router)  # /healthz, /readyz, /metrics
    return app


def _templates(context: Context) -> Jinja2Templates:
    """Jinja with gettext (jinja2.ext.i18n): ``lang`` per request, from Accept-Language or
    the ``web.language`` setting (web/pages/i18n.py)."""
    templates = Jinja2Templates(
        directory=HERE / "templates", context_processors=[templating.context_processor]
    )
    templating.configure(templates.env)
    templates.env.globals["version"] = __version__
    templates.env.globals["language"] = context.settings.web.language
    return templates
