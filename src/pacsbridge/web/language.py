"""The reader's language: the pages, the JSON API and the error page choose it the same way.

The first of ``it``/``en`` in ``Accept-Language`` (by q-value), else the ``web.language``
setting (Italian by default): so the monitor's progress JSON speaks the page's language, and an
integrator asks for English with ``Accept-Language: en`` (docs/errors.md).
"""

from __future__ import annotations

from starlette.requests import Request

from pacsbridge.messages import LANGUAGES


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
