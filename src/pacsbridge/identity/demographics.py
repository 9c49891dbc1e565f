"""Birth date and sex checks of manual §4.A: match, mismatch or missing.

One rule for both: **a check passes only on positive agreement.** A value absent on either side
is ``missing``, never ``match``: the launch API always sends both, so a gap is worth showing,
and the verdict is a mismatch whatever the word on the screen.

Padding (trailing spaces, or NUL bytes written by some media burners) is not a value and is
ignored. A DICOM value that is present but unreadable is a ``mismatch``, not ``missing``: the
media does say something about this patient, we cannot show that it agrees with the RIS, and
the operator must look at the raw value rather than be told there is none.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

#: The words of the public API (``PatientVerdict.checks["birth_date"]`` and ``["sex"]``).
Check = Literal["match", "mismatch", "missing"]

_PADDING = " \x00"

#: DA is YYYYMMDD (PS3.5 §6.2); PS3.5 also recommends reading the pre-3.0 ACR-NEMA form
#: YYYY.MM.DD, which old modalities still burn on CDs. Both are unambiguous. ASCII digits only:
#: ``str.isdigit`` and ``\d`` would also take Arabic-Indic or superscript digits.
_DA = re.compile(r"[0-9]{8}|[0-9]{4}\.[0-9]{2}\.[0-9]{2}")

#: Sex "unknown" (PS3.3 C.7.1.1, Patient's Sex; HL7 table 0001). Unknown confirms nothing:
#: on the RIS side it counts as missing; on the media against M or F it is a mismatch.
UNKNOWN_SEX = "U"


def check_birth_date(ris: date | None, dicom: str | None) -> Check:
    """Match, mismatch or missing for the RIS birth date against a raw DICOM DA value."""
    raw = _unpadded(dicom)
    if ris is None or not raw:
        return "missing"
    return "match" if parse_date(raw) == ris else "mismatch"


def parse_date(raw: str) -> date | None:
    """A DICOM DA as a date, or None when it is not an exact, real calendar date.

    Why so strict (``strptime`` is not: it reads ``197401 1`` as 1 January 1974): a partial
    date such as ``197401`` or a placeholder such as ``00000000`` does not name a day, so it
    cannot agree with one.
    """
    if not _DA.fullmatch(raw):
        return None
    digits = raw.replace(".", "")
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def check_sex(ris: str | None, dicom: str | None) -> Check:
    """Match, mismatch or missing for the RIS sex against a raw DICOM CS value.

    Compared without regard to case (CS is upper case by definition; a lower-case ``m`` names
    nobody else). Any other spelling (``MALE``) is a mismatch the operator will see.
    """
    seen, wanted = _unpadded(dicom).upper(), _unpadded(ris).upper()
    if not seen or wanted in ("", UNKNOWN_SEX):
        return "missing"
    return "match" if seen == wanted else "mismatch"


def _unpadded(value: str | None) -> str:
    return (value or "").strip(_PADDING)
