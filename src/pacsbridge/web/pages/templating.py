"""The pages' Jinja set-up: gettext, the per-request context, the display filters.

``web/app.py`` builds its ``Jinja2Templates`` with :func:`context_processor` and calls
:func:`configure` once; the error page (web/errors.py) renders through the same environment, so
it speaks the request's language too.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request

from pacsbridge import errors
from pacsbridge.messages import CATALOGUE, text
from pacsbridge.web.pages import i18n, view


def context_processor(request: Request) -> dict[str, Any]:
    """``lang`` (request language) and ``root`` (the app's mount path, for static URLs)."""
    return {**i18n.context_processor(request), "root": request.scope.get("root_path", "")}


def configure(env: Environment) -> None:
    i18n.install(env)
    env.filters.update(day=view.day, moment=view.moment, person_name=view.person_name)
    env.globals["error_message"] = error_message


def error_message(error: dict[str, Any], lang: str) -> str:
    """The error's message in ``lang``: re-translated when it takes no parameters."""
    key = _ERROR_KEYS.get(str(error.get("code")))
    template = CATALOGUE.get(key or "", {}).get(lang, "")
    if lang == "it" or not template or "{" in template:
        return str(error.get("message", ""))
    return text(key or "", lang)


_ERROR_KEYS = {cls.code: cls.message_key for cls in errors.all_error_classes()}
