"""gettext for the pages: Italian by default, English by setting or by the browser's language.

The catalogues live in ``web/locale/<lang>/LC_MESSAGES/pacsbridge.po`` with English msgids; the
compiled ``.mo`` files are committed beside them, so a running server needs no Babel (a test
checks that each ``.mo`` matches its ``.po``). Templates use ``_()``/``{% trans %}`` through
``jinja2.ext.i18n``; the callables read the request's language from the template context, so
one Jinja environment serves both languages. Strings the JavaScript shows are translated here
too and reach it as a JSON block (no inline script: the pages' CSP forbids it).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context as JinjaContext
from starlette.requests import Request

from pacsbridge.messages import DOMAIN, LANGUAGES, LOCALE_DIR, translations
from pacsbridge.web.language import negotiate, request_language

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "gettext",
    "negotiate",
    "request_language",
    "translations",
]


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a msgid for ``pybabel extract -k N_``; translated where it is shown."""
    return message


def gettext(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


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
