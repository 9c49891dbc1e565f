"""The DICOM UID grammar, checked wherever a UID enters from outside (PS3.5 §9.1).

A UID is one to 64 characters of digits and dots; each dot-separated component is a
non-empty run of digits without a leading zero (a lone ``0`` is allowed). Anything else is
data that must never be trusted: a UID from a CD, a DICOM peer, the RIS or a browser is
checked with :func:`is_valid` before it is stored, compared or sent, and it is never used to
name a file or build a URL (files are named from our own ids, see docs/architecture.md).

pydicom's ``UID.is_valid`` accepts the same grammar but is lenient about surrounding
whitespace and padding; this module is the single strict check the product uses. It is a
leaf: every package may import it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_LENGTH = 64
_GRAMMAR = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def is_valid(value: object) -> bool:
    """True when ``value`` is a string that is a well-formed DICOM UID."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_LENGTH
        and _GRAMMAR.fullmatch(value) is not None
    )


def clean(value: object) -> str:
    """The UID as a DICOM element holds it: trailing NUL/space padding removed (PS3.5 §6.2)."""
    return str(value or "").rstrip("\x00 ")


#: How many bad positions a refusal names: the answer stays small however long the list.
NAMED_POSITIONS = 5


def require_valid(values: Sequence[object]) -> None:
    """ValueError naming the positions of the entries that are not valid UIDs.

    For API input (a pydantic validator turns it into a 422 naming the field). Positions,
    not values, are named: a hostile value may be long or shaped to mislead whoever reads it.
    """
    bad = [index for index, value in enumerate(values) if not is_valid(value)]
    if bad:
        shown = ", ".join(str(index) for index in bad[:NAMED_POSITIONS])
        more = f" and {len(bad) - NAMED_POSITIONS} more" if len(bad) > NAMED_POSITIONS else ""
        raise ValueError(f"not a valid DICOM UID at position {shown}{more}")


def invalid(values: object) -> list[str]:
    """The members of ``values`` that are not valid UIDs (for naming them in an error)."""
    return [v for v in (values or []) if not is_valid(v)]  # type: ignore[union-attr]
