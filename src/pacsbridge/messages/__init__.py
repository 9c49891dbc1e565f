"""The message catalogue: every text a user or an integrator reads, under a stable key.

Why keys and not words: what pacsbridge stores (phase results, the error of an import or a
retrieval, audit details, verdicts) is read later by people in different languages: an
operator on the Italian page, a colleague on the English one, an integrator through the API,
the RIS through HL7. So code and the database hold a *said* message, ``{"key": ...,
"params": {...}}`` (:func:`said`), and the words are chosen only at the edge, in the reader's
language, by :func:`render` / :func:`text` (docs/errors.md, "Errors carry keys").

One catalogue for the pages and the messages: the English source text sits beside its key
(:mod:`.catalogue`, :mod:`.fse`) and is extracted by pybabel with the key as message context
(msgctxt); the Italian, worded as the Italian specification (docs/specifications.md), lives in
``web/locale/it/LC_MESSAGES/pacsbridge.po`` with the pages' texts, and the server reads the
compiled ``.mo`` (docs/operator-pages.md, "Languages").
"""

from __future__ import annotations

import gettext as gettext_module
from functools import cache
from pathlib import Path
from typing import Any

from pacsbridge.messages import catalogue, fse

DEFAULT_LANGUAGE = "it"
LANGUAGES = ("it", "en")
LOCALE_DIR = Path(__file__).resolve().parents[1] / "web" / "locale"
DOMAIN = "pacsbridge"
#: A text stored before messages were keys: shown as it was written.
LEGACY = "text.legacy"

#: key → English source text.
CATALOGUE: dict[str, str] = dict((*catalogue.ENTRIES, *fse.ENTRIES))

#: What is stored: ``{"key": str, "params": {name: JSON value or a nested said message}}``.
Said = dict[str, Any]


@cache
def translations(lang: str) -> gettext_module.NullTranslations:
    return gettext_module.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def language(lang: str | None) -> str:
    """``lang`` when we speak it, else Italian (the default of the UI and the API)."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def template(key: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The text of ``key`` in ``lang`` with its ``{placeholders}`` still open."""
    return translations(language(lang)).pgettext(key, CATALOGUE[key])


def text(key: str, lang: str = DEFAULT_LANGUAGE, **params: Any) -> str:
    """The message for ``key`` in ``lang``, with ``{params}`` filled in (nested ones rendered).

    A missing parameter leaves its placeholder visible rather than raising: a message must never
    be the reason an error page fails.
    """
    words = template(key, lang)
    try:
        return words.format(**{name: _param(value, lang) for name, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return words


def said(key: str, **params: Any) -> Said:
    """A message to store: its key and JSON-safe parameters (a nested message stays one)."""
    return {"key": key, "params": {name: plain(value) for name, value in params.items()}}


def legacy(words: str) -> Said:
    """A text written before messages were keys (a migrated row): shown as it is."""
    return said(LEGACY, text=words)


def is_said(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("key"), str) and "params" in value


def render(message: Said | str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A stored message in ``lang``; a legacy dict with a ``message`` text as it was written."""
    if not message:
        return ""
    if isinstance(message, str):
        return message
    key = message.get("key")
    if isinstance(key, str) and key in CATALOGUE:
        return text(key, lang, **(message.get("params") or {}))
    return str(message.get("message", ""))


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: numbers, text, lists, dicts; anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def _param(value: Any, lang: str) -> Any:
    """A nested message rendered in ``lang``; a list of them as one comma-separated text."""
    if is_said(value):
        return render(value, lang)
    if isinstance(value, list):
        return ", ".join(str(_param(item, lang)) for item in value)
    return value
