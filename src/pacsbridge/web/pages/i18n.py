"""gettext for the pages: Italian by default, English by setting or by the browser's language.

The catalogues live in ``web/locale/<lang>/LC_MESSAGES/pacsbridge.po`` with English msgids; the
compiled ``.mo`` files are committed beside them, so a running server needs no Babel (a test
checks that each ``.mo`` matches its ``.po``). Templates use ``_()``/``{% trans %}`` through
``jinja2.ext.i18n``; the callables read the request's language from the template context, so
one Jinja environment serves both languages. Strings the JavaScript shows are translated here
too and reach it as a JSON block (no inline script: the pages' CSP forbids it).
"""

from __future__ import annotations

import gettext as gettext_module
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context as JinjaContext
from starlette.requests import Request

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "pacsbridge"
LANGUAGES = ("it", "en")


@cache
def translations(lang: str) -> gettext_module.NullTranslations:
    return gettext_module.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a msgid for ``pybabel extract -k N_``; translated where it is shown."""
    return message


def gettext(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def negotiate(accept_language: str | None, default: str) -> str:
    """The first language of ``Accept-Language`` we speak (by q-value), else ``default``."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES:
            ranked.append((-_quality(params), index, primary))
    return min(ranked)[2] if ranked else default


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def request_language(request: Request) -> str:
    default = request.app.state.context.settings.web.language
    return negotiate(request.headers.get("accept-language"), default)


def context_processor(request: Request) -> dict[str, Any]:
    """Every template (the error page too) gets ``lang``, the request's language."""
    return {"lang": request_language(request)}


@pass_context
def _gettext(context: JinjaContext, message: str) -> str:
    return gettext(context.get("lang") or LANGUAGES[0], message)


@pass_context
def _ngettext(context: JinjaContext, singular: str, plural: str, count: int) -> str:
    return translations(context.get("lang") or LANGUAGES[0]).ngettext(singular, plural, count)


def install(env: Environment) -> None:
    """Add ``jinja2.ext.i18n`` with per-request callables to the pages' environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
