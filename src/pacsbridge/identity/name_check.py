"""The name check of manual §4.A: match, format_different, mismatch or missing.

Why rules and not a similarity score: no fuzzy threshold separates ROSSI MARIA from a typo of
ROSSI MARIO, and a study attached to the wrong patient is the worst bug this product can have.
So the verdict comes from the rules below; a similarity score may only add a hint
(:func:`is_similar`), and the hint never changes the check.

The rules, in the order they are tried:

1. **missing**: the DICOM name is empty, only ``^`` or spaces (prefix or suffix alone included:
   a title is not a name; so is a name held only in the ideographic group).
2. **match**: same family name, same given names (DICOM given + middle against the RIS given
   name), forgiving only letter case and extra whitespace (:func:`person_name.fold`).
   Accented against unaccented (NICOLÒ / NICOLO) is not a match: it is rule 3. Two
   consequences of "case and whitespace only", both the same person: Strauß / STRAUSS match
   (Unicode case folding writes ß as ss), and ROSSI^^MARIO matches ROSSI / MARIO (given +
   middle is " MARIO"; the space is extra whitespace).
3. **format_different**: the same letters written in another form. Each side is read as one
   or two *blocks* (family, given names; an empty one is dropped), a block being its letters
   after transliteration with every separator removed. The two sides are the same letters when:

   - both have two blocks: the blocks are equal, in the same order or swapped
     (MARIO^ROSSI). Inside a block, spaces and apostrophes may be added, moved or dropped
     (D'ANGELO / DANGELO / D ANGELO, DE LUCA / DELUCA, NICOLO' / NICOLO), but the order of the
     letters is kept: ANNA MARIA against MARIA ANNA is a mismatch.
   - one side has a single block (ROSSI MARIO, ROSSI,MARIO or CERRI*SIMONE in one component):
     it is cut at a separator into two blocks, and one cut must give the other side's blocks,
     in either order.
   - both have a single block: the same letters, or the same two blocks swapped (each side
     cut at a separator).

   Letters and digits count, nothing else (:func:`person_name.tokens`): TEST1 / TEST2 differ.

   **The family/given boundary never moves across letters.** ROSS^IMARIO has the letters of
   ROSSI MARIO, but the boundary sits elsewhere: a mismatch. DE^LUCA ANNA against DE LUCA /
   ANNA: a mismatch (the family name on the media is DE). ROSSIMARIO in one component, with no
   separator to cut at: a mismatch. Letters never migrate between family and given name: each
   name keeps its own letters, only the field holding it may change (a swap), and a
   format_different patient is never imported without the operator's confirmation.
4. **mismatch**: everything else, one letter apart included (MARIO / MARIA, NICOLÒ / NICOLA,
   ROSSI / ROSSINI), and an RIS patient without a name (nothing to compare with).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from rapidfuzz import fuzz

from pacsbridge.identity.person_name import PersonName, fold, parse, tokens

#: The words of the public API (``PatientVerdict.checks["name"]``); mypy checks every return.
NameCheck = Literal["match", "format_different", "mismatch", "missing"]

#: rapidfuzz ratio (0-100) from which a mismatching name earns the ``identity.name_similar``
#: hint: ROSSI MARIA against ROSSI MARIO scores 91, ROSSI against BIANCHI 33.
SIMILAR_RATIO = 85.0

Reading = tuple[str, ...]  # one way to read a name: the letters of its one or two blocks


@dataclass(frozen=True)
class _Side:
    """One side's name for rule 3: the letters of its blocks and, for a single block, the
    letter offsets where a separator stood (where that block may be cut in two)."""

    blocks: tuple[str, ...]
    cuts: tuple[int, ...] = ()


def check_name(ris_family: str, ris_given: str, dicom_name: str | None) -> NameCheck:
    """The name check, by the rules of the module docstring."""
    dicom = parse(dicom_name)
    if dicom.is_empty:
        return "missing"
    if _same_text(ris_family, ris_given, dicom):
        return "match"
    if _same_letters(_side([ris_family, ris_given]), _side([dicom.family, dicom.given_names])):
        return "format_different"
    return "mismatch"


def is_similar(ris_family: str, ris_given: str, dicom_name: str | None) -> bool:
    """Whether a mismatching name is close enough to deserve a "nome simile" hint.

    Both orders of the RIS name are scored, so that a swapped name with a typo still earns it.
    """
    dicom = parse(dicom_name)
    seen = _spelled([dicom.family, dicom.given_names])
    if not seen:  # rapidfuzz scores two empty strings 100: nothing is not similar to nothing
        return False
    candidates = (_spelled([ris_family, ris_given]), _spelled([ris_given, ris_family]))
    return max(fuzz.ratio(seen, c) for c in candidates) >= SIMILAR_RATIO


def _same_text(ris_family: str, ris_given: str, dicom: PersonName) -> bool:
    """Rule 2: equal once case and whitespace are forgiven, part by part."""
    family_equal = fold(ris_family) == fold(dicom.family)
    return family_equal and fold(ris_given) == fold(dicom.given_names)


def _same_letters(ris: _Side, dicom: _Side) -> bool:
    """Rule 3: the media can be read as one of the readings of the RIS name.

    The RIS side is enumerated and the media side only tested, because the launch contract
    bounds the RIS name (200 characters) while a crafted file may hold a name of any length:
    listing every cut of a 64 KiB media name would take seconds and gigabytes.
    """
    return any(_reads_as(dicom, reading) for reading in _readings(ris))


def _side(parts: Iterable[str]) -> _Side:
    """The parts that hold any letter or digit, as blocks of letters (and cuts when single)."""
    blocks = [block for block in map(tokens, parts) if block]
    letters = tuple("".join(block) for block in blocks)
    if len(blocks) != 1:
        return _Side(letters)
    return _Side(letters, tuple(accumulate(len(token) for token in blocks[0][:-1])))


def _readings(side: _Side) -> Iterator[Reading]:
    """Every way a name may be read: its blocks either way round; a single block also cut in
    two at each separator, either way round. A name without letters has no reading."""
    if side.blocks:
        yield side.blocks
        yield side.blocks[::-1]
    for at in side.cuts:
        text = side.blocks[0]
        yield text[:at], text[at:]
        yield text[at:], text[:at]


def _reads_as(side: _Side, reading: Reading) -> bool:
    """Whether this name can be read as ``reading`` (the same test as listing its readings)."""
    if len(reading) == len(side.blocks):
        return reading in (side.blocks, side.blocks[::-1])
    if len(reading) == 2 and len(side.blocks) == 1:
        first, second = reading
        return first + second == side.blocks[0] and len(first) in side.cuts
    return False


def _spelled(parts: Iterable[str]) -> str:
    """A name as one comparable string for the similarity hint: tokens joined by spaces."""
    return " ".join(token for part in parts for token in tokens(part))
