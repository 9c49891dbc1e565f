"""The name rules of manual §4.A, one row per edge: match, format_different, mismatch, missing.

The mismatch table is the important one: every row there is two different people (or a name
that cannot be shown to be the same one) that a looser rule would let through.
"""

from __future__ import annotations

import unicodedata

import pytest

from pacsbridge.identity.name_check import check_name, is_similar


def rows(expected, table):
    """pytest params (family, given, dicom, expected) from (id, family, given, dicom) rows."""
    return [pytest.param(f, g, d, expected, id=i) for i, f, g, d in table]


MATCHES = [
    ("plain", "ROSSI", "MARIO", "ROSSI^MARIO"),
    ("lower-case", "ROSSI", "MARIO", "rossi^mario"),
    ("mixed-case-ris", "Rossi", "Mario", "ROSSI^MARIO"),
    ("padded", "ROSSI", "MARIO", "ROSSI ^ MARIO "),
    ("trailing-empty-components", "ROSSI", "MARIO", "ROSSI^MARIO^^^"),
    ("prefix-and-suffix", "ROSSI", "MARIO", "ROSSI^MARIO^^DR^JR"),
    ("suffix-only", "ROSSI", "MARIO", "ROSSI^MARIO^^^III"),
    ("sixth-component-in-suffix", "ROSSI", "MARIO", "ROSSI^MARIO^^^^LUIGI"),
    ("ideographic-group", "ROSSI", "MARIO", "ROSSI^MARIO=ロッシ^マリオ=ろっし^まりお"),
    ("middle-name", "ROSSI", "MARIO LUIGI", "ROSSI^MARIO^LUIGI"),
    ("two-given-one-component", "ROSSI", "MARIO LUIGI", "ROSSI^MARIO LUIGI"),
    ("middle-without-given", "ROSSI", "MARIO", "ROSSI^^MARIO"),
    ("double-surname", "DE LUCA", "ANNA", "DE LUCA^ANNA"),
    ("double-surname-extra-space", "DE LUCA", "ANNA", "DE   LUCA^ANNA"),
    ("apostrophe", "D'ANGELO", "GIUSEPPE", "D'ANGELO^GIUSEPPE"),
    ("accent", "BIANCHI", "NICOLÒ", "BIANCHI^NICOLÒ"),
    ("accent-lower", "BIANCHI", "NICOLÒ", "Bianchi^Nicolò"),
    ("accent-decomposed", "BIANCHI", "NICOLÒ", unicodedata.normalize("NFD", "BIANCHI^NICOLÒ")),
    ("sharp-s-case-folds", "STRAUSS", "JOHANN", "Strauß^Johann"),
    ("cyrillic", "ИВАНОВ", "ИВАН", "Иванов^Иван"),
    ("ris-without-given", "ROSSI", "", "ROSSI"),
    ("ris-without-given-caret", "ROSSI", "", "ROSSI^"),
]

FORMAT_DIFFERENT = [
    ("swapped", "ROSSI", "MARIO", "MARIO^ROSSI"),
    ("one-component", "ROSSI", "MARIO", "ROSSI MARIO"),
    ("one-component-given-first", "ROSSI", "MARIO", "MARIO ROSSI"),
    ("one-component-in-given", "ROSSI", "MARIO", "^ROSSI MARIO"),
    ("given-and-middle-as-one", "ROSSI", "MARIO", "^ROSSI^MARIO"),
    ("comma", "ROSSI", "MARIO", "ROSSI, MARIO"),
    ("comma-no-space", "ROSSI", "MARIO", "ROSSI,MARIO"),
    ("asterisk", "CERRI", "SIMONE", "CERRI*SIMONE"),
    ("accent-as-apostrophe", "BIANCHI", "NICOLÒ", "BIANCHI^NICOLO'"),
    ("accent-dropped", "BIANCHI", "NICOLÒ", "BIANCHI^NICOLO"),
    ("apostrophe-to-accent", "BIANCHI", "NICOLO'", "BIANCHI^NICOLÒ"),
    ("accent-surname", "CANTÙ", "LUCIA", "CANTU'^LUCIA"),
    ("apostrophe-dropped", "D'ANGELO", "GIUSEPPE", "DANGELO^GIUSEPPE"),
    ("apostrophe-as-space", "D'ANGELO", "GIUSEPPE", "D ANGELO^GIUSEPPE"),
    ("apostrophe-typographic", "D'ANGELO", "GIUSEPPE", "D’ANGELO^GIUSEPPE"),
    ("apostrophe-added", "DANGELO", "GIUSEPPE", "D'ANGELO^GIUSEPPE"),
    ("dell-apostrophe", "DELL'ACQUA", "PAOLO", "DELLACQUA^PAOLO"),
    ("de-joined", "DE LUCA", "ANNA", "DELUCA^ANNA"),
    ("de-split", "DELUCA", "ANNA", "DE LUCA^ANNA"),
    ("di-joined", "DI STEFANO", "GIULIA", "DISTEFANO^GIULIA"),
    ("del-joined", "DEL PIERO", "ALESSANDRO", "DELPIERO^ALESSANDRO"),
    ("la-joined", "LA ROSA", "CARMELA", "LAROSA^CARMELA"),
    ("lo-joined", "LO PRESTI", "SALVATORE", "LOPRESTI^SALVATORE"),
    ("double-surname-hyphen", "ROSSI BIANCHI", "MARIA", "ROSSI-BIANCHI^MARIA"),
    ("double-given-joined", "ROSSI", "ANNA MARIA", "ROSSI^ANNAMARIA"),
    ("swapped-and-joined", "DE LUCA", "ANNA", "ANNA^DELUCA"),
    ("one-component-double-surname", "DE LUCA", "ANNA", "DE LUCA ANNA"),
    ("one-component-apostrophe", "D'ANGELO", "MARIA", "D'ANGELO MARIA"),
    ("umlaut-dropped", "MÜLLER", "JÜRGEN", "MULLER^JURGEN"),
    ("polish-l", "WAŁĘSA", "LECH", "WALESA^LECH"),
    ("danish-o", "SØRENSEN", "SØREN", "SORENSEN^SOREN"),
    ("croatian-d", "ĐOKOVIĆ", "NOVAK", "DOKOVIC^NOVAK"),
    ("cyrillic-to-latin", "IVANOV", "IVAN", "Иванов^Иван"),
    ("latin-to-cyrillic", "Иванов", "Иван", "IVANOV^IVAN"),
    ("sharp-s-spelled", "STRAUß", "JOHANN", "STRAUSS JOHANN"),
    ("html-brackets-separate", "ROSSI", "MARIO", "<ROSSI>^<MARIO>"),
    ("digit-spaced", "TEST1", "MARIO", "TEST 1^MARIO"),
    ("ris-one-field", "ROSSI MARIO", "", "ROSSI^MARIO"),
    ("ris-one-field-swapped", "ROSSI MARIO", "", "MARIO ROSSI"),
]

MISMATCHES = [
    ("mario-maria", "ROSSI", "MARIO", "ROSSI^MARIA"),
    ("nicolo-nicola", "BIANCHI", "NICOLÒ", "BIANCHI^NICOLA"),
    ("nicolo-apostrophe-nicola", "BIANCHI", "NICOLO'", "BIANCHI^NICOLA"),
    ("rossi-rossini", "ROSSI", "MARIO", "ROSSINI^MARIO"),
    ("other-family", "ROSSI", "MARIO", "BIANCHI^MARIO"),
    ("other-person", "ROSSI", "MARIO", "VERDI^GIUSEPPE"),
    ("boundary-moved", "ROSSI", "MARIO", "ROSS^IMARIO"),
    ("boundary-moved-one-component", "ROSSI", "MARIO", "ROSS IMARIO"),
    ("no-separator-to-cut", "ROSSI", "MARIO", "ROSSIMARIO"),
    ("family-cut-short", "DE LUCA", "ANNA", "DE^LUCA ANNA"),
    ("given-in-family", "ROSSI", "MARIO LUIGI", "ROSSI MARIO^LUIGI"),
    ("given-order-swapped", "ROSSI", "ANNA MARIA", "ROSSI^MARIA ANNA"),
    ("double-given-letters-differ", "ROSSI", "MARIANNA", "ROSSI^MARIA ANNA"),
    ("extra-middle-name", "ROSSI", "MARIO", "ROSSI^MARIO^LUIGI"),
    ("given-missing-on-media", "ROSSI", "MARIO", "ROSSI"),
    ("given-only-on-media", "ROSSI", "MARIO", "^MARIO"),
    ("given-in-prefix", "ROSSI", "MARIO", "ROSSI^^^MARIO"),
    ("extra-given-on-media", "ROSSI", "", "ROSSI^MARIO"),
    ("umlaut-as-e", "MÜLLER", "JÜRGEN", "MUELLER^JUERGEN"),
    ("croatian-dj", "ĐOKOVIĆ", "NOVAK", "DJOKOVIC^NOVAK"),
    ("sharp-s-single", "STRAUß", "JOHANN", "STRAUS^JOHANN"),
    ("digits-differ", "TEST", "MARIO", "TEST1^MARIO"),
    ("test-records", "TEST1", "MARIO", "TEST2^MARIO"),
    ("html-tag-letters", "ROSSI", "MARIO", "<b>ROSSI</b>^MARIO"),
    ("html-entity-letters", "ROSSI", "MARIO", "&lt;ROSSI&gt;^MARIO"),
    ("script", "ROSSI", "MARIO", "<script>alert(1)</script>^MARIO"),
    ("punctuation-only", "ROSSI", "MARIO", "***^---"),
    ("ris-without-names", "", "", "ROSSI^MARIO"),
    ("nothing-on-either-side", "", "", "***"),
    ("ideographic-only-letters", "ROSSI", "MARIO", "ロッシ^マリオ"),
]

MISSING = [
    ("empty", "ROSSI", "MARIO", ""),
    ("none", "ROSSI", "MARIO", None),
    ("caret", "ROSSI", "MARIO", "^"),
    ("carets", "ROSSI", "MARIO", "^^^^"),
    ("spaces", "ROSSI", "MARIO", "   "),
    ("prefix-only", "ROSSI", "MARIO", "^^^DR^"),
    ("ideographic-only", "ROSSI", "MARIO", "=ロッシ^マリオ"),
]


@pytest.mark.parametrize(
    ("family", "given", "dicom", "expected"),
    rows("match", MATCHES)
    + rows("format_different", FORMAT_DIFFERENT)
    + rows("mismatch", MISMATCHES)
    + rows("missing", MISSING),
)
def test_check_name(family, given, dicom, expected):
    assert check_name(family, given, dicom) == expected


def swapped_sides(expected, table):
    """The two-component rows with media and RIS exchanged: the rules must not care which side
    holds which form, or a looser reading would let the pair through from the other side."""
    return [
        pytest.param(*dicom.split("^"), f"{family}^{given}", expected, id=f"reverse-{name}")
        for name, family, given, dicom in table
        if dicom.count("^") == 1 and (family + given)
    ]


@pytest.mark.parametrize(
    ("family", "given", "dicom", "expected"),
    swapped_sides("format_different", FORMAT_DIFFERENT) + swapped_sides("mismatch", MISMATCHES),
)
def test_rules_are_symmetric(family, given, dicom, expected):
    assert check_name(family, given, dicom) == expected


@pytest.mark.parametrize(
    ("family", "given", "dicom", "similar"),
    [
        pytest.param("ROSSI", "MARIO", "ROSSI^MARIA", True, id="mario-maria"),
        pytest.param("ROSSI", "MARIO", "ROSSINI^MARIO", True, id="rossi-rossini"),
        pytest.param("BIANCHI", "NICOLÒ", "BIANCHI^NICOLA", True, id="nicolo-nicola"),
        pytest.param("ROSSI", "MARIO", "ROSS^IMARIO", True, id="boundary-moved"),
        pytest.param("ROSSI", "MARIO", "ROSSIMARIO", True, id="no-separator"),
        pytest.param("ROSSI", "MARIO", "MARIA^ROSSI", True, id="swapped-with-typo"),
        pytest.param("ROSSI", "MARIO", "ROSSI^LUIGI", False, id="other-given"),
        pytest.param("ROSSI", "MARIO", "BIANCHI^MARIO", False, id="other-family"),
        pytest.param("ROSSI", "MARIO", "VERDI^GIUSEPPE", False, id="other-person"),
        pytest.param("ROSSI", "MARIO", "***", False, id="no-letters-on-media"),
        pytest.param("", "", "***", False, id="no-letters-anywhere"),
        pytest.param("", "", "ROSSI^MARIO", False, id="no-ris-name"),
    ],
)
def test_is_similar(family, given, dicom, similar):
    assert is_similar(family, given, dicom) is similar


@pytest.mark.parametrize(
    "dicom",
    [
        pytest.param("ROSSI " * 11_000 + "^MARIO", id="many-tokens"),
        pytest.param("A " * 32_000, id="many-cuts"),
        pytest.param("ROSSI" * 13_000 + "^MARIO", id="one-long-token"),
    ],
)
def test_a_crafted_64k_name_is_a_cheap_mismatch(dicom):
    """The media side is tested, never enumerated: a long name costs milliseconds, not gigabytes
    (pytest-timeout would stop the old enumeration; the memory would go first)."""
    assert check_name("ROSSI", "MARIO", dicom) == "mismatch"
    assert not is_similar("ROSSI", "MARIO", dicom)
