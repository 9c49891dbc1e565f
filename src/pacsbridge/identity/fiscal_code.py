"""The codice fiscale check of manual §4.A: match, mismatch or absent.

Why it can only add evidence against the media, never for it: the verdict needs name, birth
date and sex anyway; a codice fiscale found on the media can only confirm them
(``identity.fiscal_code_match``) or prove another person (``mismatch``). A namesake born the same
day in another town has another code; so does a second person with the same code after
*omocodia* (the Agenzia delle Entrate swaps digits for letters): a different code is always a
different person.

What counts as a codice fiscale on the media: a Patient ID or Other Patient ID whose whole value
(spaces, hyphens and colons removed, any case) is a valid 16-character personal code by
``stdnum.it.codicefiscale`` (format, check character, real birth date). Eleven-digit values are
left out although stdnum accepts them (temporary codes and partita IVA share the format): a
numeric hospital Patient ID passes that check about once in ten, and would prove nothing.

The RIS code is taken as sent (normalised the same way, not validated): when it is wrong, a
valid different code on the media still shows "CODICE FISCALE NON CORRISPONDE", which is what
the operator must see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from stdnum.it import codicefiscale

#: The words of the public API (``PatientVerdict.checks["fiscal_code"]``).
Check = Literal["match", "mismatch", "absent"]

PERSONAL_CODE_LENGTH = 16


def check_fiscal_code(ris: str | None, dicom_ids: Iterable[str | None]) -> Check:
    """Match when every code on the media is the RIS code, mismatch when any differs."""
    wanted = normalise(ris or "")
    found = personal_codes(dicom_ids)
    if not wanted or not found:
        return "absent"
    return "match" if found == {wanted} else "mismatch"


def personal_codes(values: Iterable[str | None]) -> set[str]:
    """The distinct valid personal codes among the values, normalised."""
    codes = {normalise(value or "") for value in values}
    return {code for code in codes if is_personal_code(code)}


def is_personal_code(code: str) -> bool:
    """A valid 16-character codice fiscale (not an 11-digit temporary code or partita IVA)."""
    return len(code) == PERSONAL_CODE_LENGTH and codicefiscale.is_valid(code)


def normalise(value: str) -> str:
    """Upper case without whitespace, hyphens or colons (stdnum's own ``compact``, plus tabs)."""
    return codicefiscale.compact("".join(value.split()))
