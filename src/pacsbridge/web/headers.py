"""Security headers on every answer: pages, JSON, error pages, files, even a 500.

Applied as the outermost ASGI layer (web/app.py) so that nothing bypasses it, including the
answer of Starlette's ServerErrorMiddleware. Everything but the static assets may hold patient
data (names on pages, identities in JSON, pixels in thumbnails, packages), so everything but
``/static/`` is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: No inline script or style, nothing from elsewhere (hospital networks are closed anyway).
#: ``data:`` images only for Bootstrap's own SVG icons in its CSS.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: The bundled OHIF Viewer (web/viewer_assets.py) compiles WebAssembly codecs, runs workers and
#: sets inline styles; still nothing from elsewhere. Its page and its files (workers take the
#: policy of their own script) get this one.
VIEWER_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
VIEWER_PREFIX = "/static/ohif/"
ALWAYS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`ALWAYS`, and ``no-store`` outside ``/static/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        static = path.startswith(STATIC_PREFIX)
        viewer = path.startswith(VIEWER_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if viewer:
                    headers["Content-Security-Policy"] = VIEWER_CSP
                _add(headers, static)
            await send(message)

        await self.app(scope, receive, with_headers)


def _add(headers: MutableHeaders, static: bool) -> None:
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if not static:
        headers["Cache-Control"] = "no-store"
