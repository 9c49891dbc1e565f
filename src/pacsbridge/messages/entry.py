"""The marker of a catalogue entry (see :mod:`pacsbridge.messages`)."""

from __future__ import annotations


def M_(key: str, english: str) -> tuple[str, str]:  # noqa: N802 - gettext's marker style
    """One entry: the stable key and its English source text.

    ``pybabel extract -k M_:1c,2`` reads the key as the message context (msgctxt) and the
    English as the msgid, so the Italian is written once, in the ``.po`` catalogue.
    """
    return key, english
