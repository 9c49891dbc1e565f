"""Around every request: a request id in the log and the answer, and the request counted.

The id is the one the reverse proxy sent in ``X-Request-ID`` when it is a plain token (nginx's
``$request_id`` is 32 hex digits, a UUID fits too), else a new one: a header is untrusted input
and is never written to the log as it came (docs/logging.md). The answer carries the id back,
so a user's screenshot of an error and the server's log line can be matched.

The counter's labels are the route template (``/api/v1/imports/{import_id}``), never the path
as requested: a path may hold UIDs (docs/logging.md).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from pacsbridge import logs, metrics

log = logging.getLogger(__name__)
HEADER = b"x-request-id"
_TOKEN = re.compile(r"[A-Za-z0-9-]{8,64}")
#: a client may send any method token: others are counted as one label, so the counter's
#: series stay bounded whatever arrives
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIds:
    """Pure ASGI middleware (no body buffering: uploads stream through it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status, started = {"code": 500}, time.monotonic()

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        with logs.bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                _count(scope, status["code"], time.monotonic() - started)


def _request_id(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == HEADER:
            presented = value.decode("latin-1")
            if _TOKEN.fullmatch(presented):
                return presented
    return uuid.uuid4().hex


def _count(scope: dict[str, Any], status: int, seconds: float) -> None:
    """The counter, and a DEBUG access line with the template (uvicorn's would log the path)."""
    route = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    method = scope.get("method", "") if scope.get("method") in METHODS else "OTHER"
    metrics.HTTP_REQUESTS.labels(template, method, str(status)).inc()
    log.debug("%s %s %d in %.0f ms", method, template, status, seconds * 1000)
