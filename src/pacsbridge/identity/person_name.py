"""DICOM Person Name (PN) → the components the name check compares, and their normal forms.

Manual §4.A (docs/specifications.md) compares the name on the media with the RIS family and given
names. A PN value (PS3.5 §6.2.1) holds up to three component groups separated by ``=``: alphabetic,
ideographic, phonetic. Each group holds up to five components separated by ``^``: family name, given
name, middle name, prefix, suffix.

What we keep, and why:

- **The alphabetic group only.** The RIS holds Latin names; ideographic and phonetic groups
  (Japanese, Korean, Chinese media) would compare the RIS name with a script it never holds.
- **Family, given and middle.** Prefix and suffix (``DR``, ``JR``, ``III``) are titles, not the
  person; DICOM puts the middle name apart, the RIS writes it with the given name.
- **Extra ``^``** beyond the fifth component is not conformant PN; what follows the fourth
  ``^`` is the suffix, and is ignored like a suffix.

Two normal forms, one per question the name check asks:

- :func:`fold` answers "the same text?": NFC (the same letters whatever the Unicode
  composition), Unicode case folding (``casefold``: the standard caseless comparison, in which
  ``ß`` and ``SS`` are the same letters) and whitespace runs collapsed. Nothing else is forgiven.
- :func:`tokens` answers "the same letters in another form?": ``anyascii`` transliteration
  (NFKD keeps ß, Ł, Ø, Đ and Cyrillic as they are; anyascii gives ss, L, O, D, Ivanov), upper
  case, then the runs of letters and digits. Everything else (space, apostrophe, comma,
  asterisk, hyphen, dot, HTML punctuation) only separates tokens. Digits stay significant:
  test patients ``TEST1`` and ``TEST2`` are two records, not one name in two forms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

GROUP_SEPARATOR = "="
COMPONENT_SEPARATOR = "^"
COMPONENTS = 5  # family, given, middle, prefix, suffix (PS3.5 §6.2.1.1)

_TOKEN = re.compile(r"[A-Z0-9]+")


@dataclass(frozen=True)
class PersonName:
    """The three components of the alphabetic group that name the person."""

    family: str
    given: str
    middle: str

    @property
    def given_names(self) -> str:
        """Given and middle name as the RIS writes its given name: one field, a space between."""
        return f"{self.given} {self.middle}"

    @property
    def is_empty(self) -> bool:
        """True for '', '^^^' or spaces: manual §4.A calls such a name missing."""
        return not (self.family + self.given + self.middle).strip()


def parse(value: str | None) -> PersonName:
    """Split a decoded PN value into family, given and middle name (alphabetic group only)."""
    alphabetic = (value or "").split(GROUP_SEPARATOR, 1)[0]
    parts = alphabetic.split(COMPONENT_SEPARATOR, COMPONENTS - 1)
    family, given, middle = (parts + ["", ""])[:3]
    return PersonName(family=family, given=given, middle=middle)


def fold(text: str) -> str:
    """The text with only letter case and extra whitespace forgiven (the `match` rule)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def tokens(text: str) -> tuple[str, ...]:
    """Upper-case ASCII runs of letters and digits, after transliteration (the format rule)."""
    return tuple(_TOKEN.findall(anyascii(text).upper()))
