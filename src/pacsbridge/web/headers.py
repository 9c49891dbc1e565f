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
        static = scope.get("path", "").startswith(STATIC_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add(MutableHeaders(scope=message), static)
            await send(message)

        await self.app(scope, receive, with_headers)


def _add(headers: MutableHeaders, static: bool) -> None:
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if not static:
        headers["Cache-Control"] = "no-store"
