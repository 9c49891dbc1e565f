"""check_patient end to end (manual §4.A): the verdict is the weakest of its checks."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from stdnum.it import codicefiscale

import pacsbridge.identity
from pacsbridge.identity import DicomPatient, PatientVerdict, RisPatient, check_patient
from pacsbridge.identity.verdict import CHECK_KEYS
from pacsbridge.messages import CATALOGUE

MARIO_CF = "RSSMRA74A01H501" + codicefiscale.calc_check_digit("RSSMRA74A01H501")
NAMESAKE_CF = "RSSMRA74A01F205" + codicefiscale.calc_check_digit("RSSMRA74A01F205")

RIS = RisPatient("ROSSI", "MARIO", date(1974, 1, 1), "M", fiscal_code=MARIO_CF)
MEDIA = DicomPatient("ROSSI^MARIO", "19740101", "M", patient_id="PAT0001")


def media(**changes):
    return dataclasses.replace(MEDIA, **changes)


def ris(**changes):
    return dataclasses.replace(RIS, **changes)


def checks(name="match", birth_date="match", sex="match", fiscal_code="absent"):
    return {"name": name, "birth_date": birth_date, "sex": sex, "fiscal_code": fiscal_code}


CASES = [
    pytest.param(RIS, MEDIA, checks(), "match", ("identity.match",), (), id="match"),
    pytest.param(
        RIS,
        media(name="rossi^mario^^^", birth_date="19740101 ", sex="M "),
        checks(),
        "match",
        ("identity.match",),
        (),
        id="match-padded",
    ),
    pytest.param(
        RIS,
        media(other_patient_ids=(MARIO_CF,)),
        checks(fiscal_code="match"),
        "match",
        ("identity.match", "identity.fiscal_code_match"),
        (),
        id="match-with-fiscal-code",
    ),
    pytest.param(
        RIS,
        media(name="MARIO^ROSSI"),
        checks(name="format_different"),
        "format_different",
        ("identity.name_format_different",),
        (),
        id="format-different",
    ),
    pytest.param(
        RIS,
        media(name="CERRI*SIMONE", patient_id=MARIO_CF),
        checks(name="mismatch", fiscal_code="match"),
        "mismatch",
        ("identity.name_mismatch", "identity.fiscal_code_match"),
        (),
        id="fiscal-code-never-rescues-a-name",
    ),
    pytest.param(
        ris(family_name="D'ANGELO", given_name="NICOLÒ"),
        media(name="DANGELO^NICOLO'", patient_id=MARIO_CF),
        checks(name="format_different", fiscal_code="match"),
        "format_different",
        ("identity.name_format_different", "identity.fiscal_code_match"),
        (),
        id="format-different-with-fiscal-code",
    ),
    pytest.param(
        RIS,
        media(name="MARIO^ROSSI", patient_id=NAMESAKE_CF),
        checks(name="format_different", fiscal_code="mismatch"),
        "mismatch",
        ("identity.name_format_different", "identity.fiscal_code_mismatch"),
        (),
        id="format-different-but-other-fiscal-code",
    ),
    pytest.param(
        RIS,
        media(name="MARIO^ROSSI", birth_date="19740102"),
        checks(name="format_different", birth_date="mismatch"),
        "mismatch",
        ("identity.name_format_different", "identity.birth_date_mismatch"),
        (),
        id="format-different-but-other-birth-date",
    ),
    pytest.param(
        RIS,
        media(patient_id=NAMESAKE_CF),
        checks(fiscal_code="mismatch"),
        "mismatch",
        ("identity.fiscal_code_mismatch",),
        (),
        id="namesake-born-the-same-day-elsewhere",
    ),
    pytest.param(
        RIS,
        media(name="ROSSI^MARIA"),
        checks(name="mismatch"),
        "mismatch",
        ("identity.name_mismatch",),
        ("identity.name_similar",),
        id="mario-maria-similar",
    ),
    pytest.param(
        RIS,
        media(name="VERDI^GIUSEPPE"),
        checks(name="mismatch"),
        "mismatch",
        ("identity.name_mismatch",),
        (),
        id="other-name",
    ),
    pytest.param(
        RIS,
        media(name="^^^DR^"),
        checks(name="missing"),
        "mismatch",
        ("identity.name_missing",),
        (),
        id="name-missing",
    ),
    pytest.param(
        RIS,
        media(birth_date="19740102"),
        checks(birth_date="mismatch"),
        "mismatch",
        ("identity.birth_date_mismatch",),
        (),
        id="birth-date-mismatch",
    ),
    pytest.param(
        RIS,
        media(birth_date="1974XX01"),
        checks(birth_date="mismatch"),
        "mismatch",
        ("identity.birth_date_mismatch",),
        (),
        id="birth-date-unreadable",
    ),
    pytest.param(
        RIS,
        media(birth_date=None),
        checks(birth_date="missing"),
        "mismatch",
        ("identity.birth_date_missing",),
        (),
        id="birth-date-missing",
    ),
    pytest.param(
        ris(birth_date=None),
        MEDIA,
        checks(birth_date="missing"),
        "mismatch",
        ("identity.birth_date_missing",),
        (),
        id="ris-birth-date-missing",
    ),
    pytest.param(
        RIS,
        media(sex="U"),
        checks(sex="mismatch"),
        "mismatch",
        ("identity.sex_mismatch",),
        (),
        id="sex-unknown-on-media",
    ),
    pytest.param(
        RIS,
        media(sex=""),
        checks(sex="missing"),
        "mismatch",
        ("identity.sex_missing",),
        (),
        id="sex-missing",
    ),
    pytest.param(
        ris(sex=None),
        MEDIA,
        checks(sex="missing"),
        "mismatch",
        ("identity.sex_missing",),
        (),
        id="ris-sex-missing",
    ),
    pytest.param(
        RIS,
        DicomPatient("ROSSINI^MARIA", "19750101", "F", patient_id=NAMESAKE_CF),
        checks("mismatch", "mismatch", "mismatch", "mismatch"),
        "mismatch",
        (
            "identity.name_mismatch",
            "identity.birth_date_mismatch",
            "identity.sex_mismatch",
            "identity.fiscal_code_mismatch",
        ),
        (),  # two letters apart: ratio 83, under the hint's 85
        id="everything-fails-in-display-order",
    ),
    pytest.param(
        ris(fiscal_code=None),
        DicomPatient("", None, None),
        checks("missing", "missing", "missing", "absent"),
        "mismatch",
        ("identity.name_missing", "identity.birth_date_missing", "identity.sex_missing"),
        (),
        id="empty-media-patient",
    ),
]


@pytest.mark.parametrize(("ris_patient", "dicom", "checks", "verdict", "keys", "hints"), CASES)
def test_check_patient(ris_patient, dicom, checks, verdict, keys, hints):
    assert check_patient(ris_patient, dicom) == PatientVerdict(checks, verdict, keys, hints)


def test_checks_are_listed_in_display_order():
    assert list(check_patient(RIS, MEDIA).checks) == ["name", "birth_date", "sex", "fiscal_code"]


def test_every_key_is_in_the_catalogue():
    keys = {*CHECK_KEYS.values(), "identity.match", "identity.name_similar"}
    assert keys - set(CATALOGUE) == set()


def test_public_api():
    assert sorted(pacsbridge.identity.__all__) == [
        "DicomPatient",
        "PatientVerdict",
        "RisPatient",
        "check_patient",
    ]
    assert DicomPatient("ROSSI^MARIO", None, None).other_patient_ids == ()
    assert RisPatient("ROSSI", "MARIO", None, None).fiscal_code is None


@pytest.mark.parametrize("value", [RIS, MEDIA, check_patient(RIS, MEDIA)], ids=type)
def test_values_are_frozen(value):
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.sex = "F"  # type: ignore[misc]
