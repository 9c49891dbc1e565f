"""One error handler: JSON under /api, the error page everywhere else (Datasette).

Both say the message in the request's language (Accept-Language, else ``web.language``): the
error carries a key, and this is the edge where it gets its words (docs/errors.md).

Never a traceback: an unexpected exception is logged (without patient data) and answered as
``internal_error`` with the support hint.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pacsbridge.errors import InputError, NotFoundError, PacsbridgeError
from pacsbridge.messages import DEFAULT_LANGUAGE
from pacsbridge.web.language import request_language

log = logging.getLogger(__name__)
#: Machine clients (the JSON API, DICOMweb) get JSON errors; browsers get the page.
JSON_PREFIXES = ("/api/", "/dicomweb/")
#: A 422 names at most this many fields: the answer stays small whatever the input's size.
MAX_FIELDS = 50


def install(app: FastAPI) -> None:
    app.add_exception_handler(PacsbridgeError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PacsbridgeError)
    return answer(request, error)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    fields = [_field(e) for e in error.errors()[:MAX_FIELDS]]
    return answer(request, InputError("validation failed", fields=fields))


def _field(entry: dict[str, Any]) -> dict[str, str]:
    location = [str(p) for p in entry.get("loc", ()) if p != "body"]
    # the type lets the error page say it in the page's language (web/pages/templating.py)
    return {
        "field": ".".join(location),
        "error": str(entry.get("msg", "")),
        "type": str(entry.get("type", "")),
    }


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return answer(request, NotFoundError(str(error.detail)))
    generic = PacsbridgeError(str(error.detail))
    return answer(request, generic, status=error.status_code)


async def _unexpected(request: Request, error: Exception) -> Response:
    route = getattr(request.scope.get("route"), "path", "?")  # the template: no UID from the URL
    log.exception("unexpected error on %s %s", request.method, route)
    return answer(request, PacsbridgeError("unexpected error"))


def answer(request: Request, error: PacsbridgeError, status: int | None = None) -> Response:
    status = status or error.http_status
    body = error.as_dict(_language(request))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if request.url.path.startswith(JSON_PREFIXES):
        return JSONResponse({"error": body}, status_code=status, headers=headers)
    return _page(request, body, status)


def _language(request: Request) -> str:
    try:
        return request_language(request)
    except AttributeError:  # no context (an app built without one, as in some tests)
        return DEFAULT_LANGUAGE


def _page(request: Request, body: dict[str, Any], status: int) -> Response:
    templates = getattr(request.app.state, "templates", None)
    if templates is None:
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)
    return templates.TemplateResponse(
        request, "error.html", {"error": body, "status": status}, status_code=status
    )
