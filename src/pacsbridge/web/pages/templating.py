"""The pages' Jinja set-up: gettext, the per-request context, the display filters.

``web/app.py`` builds its ``Jinja2Templates`` with :func:`context_processor` and calls
:func:`configure` once; the error page (web/errors.py) renders through the same environment, so
it speaks the request's language too.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request

from pacsbridge.web.pages import i18n, view
from pacsbridge.web.pages.i18n import N_, gettext


def context_processor(request: Request) -> dict[str, Any]:
    """``lang`` (request language) and ``root`` (the app's mount path, for static URLs)."""
    return {**i18n.context_processor(request), "root": request.scope.get("root_path", "")}


def configure(env: Environment) -> None:
    i18n.install(env)
    env.filters.update(day=view.day, moment=view.moment, person_name=view.person_name)
    env.globals["error_message"] = error_message
    env.globals["field_error"] = field_error


def error_message(error: dict[str, Any], lang: str) -> str:  # noqa: ARG001 - the templates' call
    """The error's message: web/errors.py rendered it in the request's language, ``lang``."""
    return str(error.get("message", ""))


#: Validation errors by type (pydantic's ``type``): the page speaks its language, not the
#: validator's English (which stays in the JSON answer for integrators).
FIELD_ERRORS = {
    "int_parsing": N_("not a whole number"),
    "int_type": N_("not a whole number"),
    "missing": N_("missing"),
    "string_pattern_mismatch": N_("not in the expected form"),
    "string_too_long": N_("too long"),
    "string_too_short": N_("too short"),
    "string_type": N_("not a text"),
    "greater_than_equal": N_("too small"),
    "less_than_equal": N_("too large"),
}


def field_error(field: dict[str, Any], lang: str) -> str:
    """One invalid field, said in ``lang``; "invalid value" for a type not listed."""
    message = FIELD_ERRORS.get(str(field.get("type", "")), N_("invalid value"))
    return gettext(lang, message)
