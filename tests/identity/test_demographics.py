"""Birth date and sex checks (manual §4.A): never match on a gap; padding is not a value."""

from __future__ import annotations

from datetime import date

import pytest

from pacsbridge.identity.demographics import check_birth_date, check_sex, parse_date

BORN = date(1974, 1, 1)


@pytest.mark.parametrize(
    ("ris", "dicom", "expected"),
    [
        pytest.param(BORN, "19740101", "match", id="same"),
        pytest.param(BORN, "19740101 ", "match", id="space-padded"),
        pytest.param(BORN, " 19740101", "match", id="leading-space"),
        pytest.param(BORN, "19740101\x00", "match", id="nul-padded"),
        pytest.param(BORN, "1974.01.01", "match", id="acr-nema-dotted"),
        pytest.param(date(2000, 2, 29), "20000229", "match", id="leap-day"),
        pytest.param(BORN, "19740102", "mismatch", id="next-day"),
        pytest.param(BORN, "19750101", "mismatch", id="other-year"),
        pytest.param(date(1874, 1, 1), "19740101", "mismatch", id="other-century"),
        pytest.param(BORN, "19740110", "mismatch", id="day-month-swapped"),
        pytest.param(BORN, "1974-01-01", "mismatch", id="iso-is-not-da"),
        pytest.param(BORN, "01/01/1974", "mismatch", id="italian-format"),
        pytest.param(BORN, "197401", "mismatch", id="partial"),
        pytest.param(BORN, "00000000", "mismatch", id="placeholder"),
        pytest.param(BORN, "19740230", "mismatch", id="impossible-day"),
        pytest.param(BORN, "197401 1", "mismatch", id="strptime-would-accept"),
        pytest.param(BORN, "1974.0101", "mismatch", id="half-dotted"),
        pytest.param(BORN, "١٩٧٤٠١٠١", "mismatch", id="arabic-indic-digits"),
        pytest.param(BORN, "19740101\\19750101", "mismatch", id="two-values"),
        pytest.param(BORN, "<b>19740101</b>", "mismatch", id="html"),
        pytest.param(BORN, None, "missing", id="dicom-none"),
        pytest.param(BORN, "", "missing", id="dicom-empty"),
        pytest.param(BORN, "        ", "missing", id="dicom-padding-only"),
        pytest.param(None, "19740101", "missing", id="ris-none"),
        pytest.param(None, None, "missing", id="both-none"),
    ],
)
def test_check_birth_date(ris, dicom, expected):
    assert check_birth_date(ris, dicom) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("19740101", BORN, id="da"),
        pytest.param("1974.01.01", BORN, id="dotted"),
        pytest.param("00010101", date(1, 1, 1), id="year-one"),
        pytest.param("00000101", None, id="year-zero"),
        pytest.param("19741301", None, id="month-13"),
        pytest.param("1974", None, id="year-only"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("ris", "dicom", "expected"),
    [
        pytest.param("M", "M", "match", id="male"),
        pytest.param("F", "F", "match", id="female"),
        pytest.param("O", "O", "match", id="other"),
        pytest.param("M", "M ", "match", id="padded"),
        pytest.param("F", "F\x00", "match", id="nul-padded"),
        pytest.param("M", "m", "match", id="lower-case-dicom"),
        pytest.param("f", "F", "match", id="lower-case-ris"),
        pytest.param("M", "F", "mismatch", id="male-female"),
        pytest.param("F", "M", "mismatch", id="female-male"),
        pytest.param("M", "O", "mismatch", id="dicom-other"),
        pytest.param("F", "U", "mismatch", id="dicom-unknown"),
        pytest.param("M", "U ", "mismatch", id="dicom-unknown-padded"),
        pytest.param("O", "M", "mismatch", id="ris-other"),
        pytest.param("M", "MALE", "mismatch", id="spelled-out"),
        pytest.param("M", None, "missing", id="dicom-none"),
        pytest.param("M", "", "missing", id="dicom-empty"),
        pytest.param("M", "  ", "missing", id="dicom-padding-only"),
        pytest.param(None, "M", "missing", id="ris-none"),
        pytest.param("", "M", "missing", id="ris-empty"),
        pytest.param("U", "M", "missing", id="ris-unknown"),
        pytest.param("U", "U", "missing", id="both-unknown"),
        pytest.param(None, None, "missing", id="both-none"),
    ],
)
def test_check_sex(ris, dicom, expected):
    assert check_sex(ris, dicom) == expected
