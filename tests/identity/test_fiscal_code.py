"""Codice fiscale on the media against the RIS (manual §4.A): match, mismatch or absent.

Every code here is real: fifteen characters plus stdnum's own check character.
"""

from __future__ import annotations

import pytest
from stdnum import luhn
from stdnum.it import codicefiscale

from pacsbridge.identity.fiscal_code import check_fiscal_code, is_personal_code, normalise


def code(stem: str) -> str:
    return stem + codicefiscale.calc_check_digit(stem)


MARIO = code("RSSMRA74A01H501")  # ROSSI MARIO, M, 1 Jan 1974, Roma
NAMESAKE = code("RSSMRA74A01F205")  # ROSSI MARIO, M, 1 Jan 1974, Milano: another person
MARIA = code("RSSMRA74A41H501")  # ROSSI MARIA, F, 1 Jan 1974, Roma
OMOCODE = code("RSSMRA74A01H50M")  # MARIO's code after omocodia: another person
WRONG_CHECK = MARIO[:-1] + ("A" if MARIO[-1] != "A" else "B")
NO_SUCH_DAY = code("RSSMRA74A32H501")  # check character right, 32 January
NUMERIC = "1234567001" + luhn.calc_check_digit("1234567001")  # stdnum accepts it (partita IVA)


def test_the_codes_are_what_the_table_says():
    assert all(codicefiscale.is_valid(c) for c in (MARIO, NAMESAKE, MARIA, OMOCODE, NUMERIC))
    assert not codicefiscale.is_valid(WRONG_CHECK)
    assert not codicefiscale.is_valid(NO_SUCH_DAY)


@pytest.mark.parametrize(
    ("ris", "ids", "expected"),
    [
        pytest.param(MARIO, [MARIO], "match", id="patient-id"),
        pytest.param(MARIO, ["12345", MARIO], "match", id="other-patient-id"),
        pytest.param(MARIO, [MARIO, MARIO.lower()], "match", id="same-code-twice"),
        pytest.param(MARIO, [MARIO.lower()], "match", id="lower-case-media"),
        pytest.param(MARIO.lower(), [MARIO], "match", id="lower-case-ris"),
        pytest.param(MARIO, [f" {MARIO[:6]} {MARIO[6:11]} {MARIO[11:]} "], "match", id="spaces"),
        pytest.param(MARIO, [f"{MARIO[:6]}-{MARIO[6:]}"], "match", id="hyphen"),
        pytest.param(f"{MARIO}\t", [MARIO], "match", id="ris-tab"),
        pytest.param(MARIO, [NAMESAKE], "mismatch", id="namesake-other-town"),
        pytest.param(MARIO, [MARIA], "mismatch", id="mario-maria"),
        pytest.param(MARIO, [OMOCODE], "mismatch", id="omocodia"),
        pytest.param(MARIO, [MARIO, NAMESAKE], "mismatch", id="one-of-two-differs"),
        pytest.param(WRONG_CHECK, [MARIO], "mismatch", id="ris-code-invalid"),
        pytest.param(None, [MARIO], "absent", id="ris-none"),
        pytest.param("", [MARIO], "absent", id="ris-empty"),
        pytest.param("   ", [MARIO], "absent", id="ris-blank"),
        pytest.param(MARIO, [], "absent", id="no-ids"),
        pytest.param(MARIO, [None], "absent", id="patient-id-none"),
        pytest.param(MARIO, ["", "PAT0001"], "absent", id="hospital-ids"),
        pytest.param(MARIO, [WRONG_CHECK], "absent", id="wrong-check-character"),
        pytest.param(MARIO, [NO_SUCH_DAY], "absent", id="impossible-birth-date"),
        pytest.param(MARIO, [NUMERIC], "absent", id="eleven-digits-ignored"),
        pytest.param(MARIO, [f"CF:{MARIO}"], "absent", id="whole-value-only"),
        pytest.param(MARIO, [f"{MARIO}^^^AO17"], "absent", id="with-issuer"),
        pytest.param(NUMERIC, [NUMERIC], "absent", id="eleven-digits-both-sides"),
    ],
)
def test_check_fiscal_code(ris, ids, expected):
    assert check_fiscal_code(ris, ids) == expected


@pytest.mark.parametrize(
    ("value", "personal"),
    [
        pytest.param(MARIO, True, id="personal"),
        pytest.param(OMOCODE, True, id="omocode"),
        pytest.param(NUMERIC, False, id="eleven-digits"),
        pytest.param(WRONG_CHECK, False, id="wrong-check"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_personal_code(value, personal):
    assert is_personal_code(value) is personal


def test_normalise():
    assert normalise(" rssmra 74a01-h501:w\t") == "RSSMRA74A01H501W"
