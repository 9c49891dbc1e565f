"""Builders and ACK reading: every built message passes hl7apy's strict v2.5 validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message

from pacsbridge.hl7v2 import (
    ArchivedStudy,
    MessageIds,
    OrderRef,
    PatientRef,
    build_merge,
    build_order_archived,
    read_ack,
)

ROME = timezone(timedelta(hours=1))
IDS = MessageIds(
    control_id="PB0000000001",
    timestamp=datetime(2026, 11, 23, 10, 15, 30, tzinfo=ROME),
    sending_application="PACSBRIDGE",
    sending_facility="AO17",
    receiving_application="RIS",
    receiving_facility="AO17",
)
RIS_PATIENT = PatientRef("RIS123", "AO17", "D'ANGELO", "NICOLÒ", date(1974, 1, 1), "M")
EXTERNAL = PatientRef("EXT9", "OSPEXT", "DANGELO", "NICOLO", date(1974, 1, 1), "M")
ORDER = OrderRef("ORD-1", "ACC1", "TC TORACE")
STUDIES = [ArchivedStudy("1.2.3.4", 17, "CT chest"), ArchivedStudy("1.2.3.5", 2)]


def validated(message: str) -> Any:
    """hl7apy's v2.5 structure check (STRICT): required segments, groups and fields."""
    parsed = parse_message(message, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    parsed.validate()
    return parsed


def field(message: str, key: str) -> str:
    """One value by python-hl7 accessor, unescaped, as a receiver reads it."""
    return str(hl7.parse(message)[key])


def merge(target: PatientRef = RIS_PATIENT, source: PatientRef = EXTERNAL) -> str:
    return build_merge(IDS, target, source)


def archived(studies: list[ArchivedStudy] = STUDIES, reason: str | None = None) -> str:
    return build_order_archived(IDS, RIS_PATIENT, ORDER, studies, reason)


# --- ADT^A40 -------------------------------------------------------------------------------


def test_merge_is_a_valid_adt_a39_structure() -> None:
    assert validated(merge()).name == "ADT_A39"


def test_merge_header_comes_from_the_ids() -> None:
    msh = merge().split("\r")[0].split("|")
    assert msh[2:12] == [
        "PACSBRIDGE",
        "AO17",
        "RIS",
        "AO17",
        "20261123101530+0100",
        "",
        "ADT^A40^ADT_A39",
        "PB0000000001",
        "P",
        "2.5",
    ]
    assert msh[17] == "8859/1"


def test_merge_names_the_surviving_and_the_prior_patient() -> None:
    message = merge()
    assert field(message, "PID.F3.R1.C1") == "RIS123"
    assert field(message, "PID.F3.R1.C4") == "AO17"
    assert field(message, "PID.F5.R1.C1") == "D'ANGELO"
    assert field(message, "PID.F7") == "19740101"
    assert field(message, "PID.F8") == "M"
    assert field(message, "MRG.F1.R1.C1") == "EXT9"
    assert field(message, "MRG.F1.R1.C4") == "OSPEXT"
    assert field(message, "EVN.F1") == "A40"


def test_the_validator_rejects_an_a40_without_mrg() -> None:
    """Proof that ``validated`` checks structure: HL7 v2.5 3.3.40 requires MRG."""
    without_mrg = "\r".join(s for s in merge().split("\r") if not s.startswith("MRG"))
    with pytest.raises(ValidationError, match="MRG"):
        validated(without_mrg)


def test_delimiters_in_values_are_escaped() -> None:
    tricky = "O|B^R~I&E\\N"
    message = merge(replace(RIS_PATIENT, family_name=tricky))
    assert "O\\F\\B\\S\\R\\R\\I\\T\\E\\E\\N^NICOLÒ" in message
    assert field(message, "PID.F5.R1.C1") == tricky
    validated(message)


def test_latin1_names_are_sent_as_they_are() -> None:
    message = merge()
    assert "D'ANGELO^NICOLÒ" in message
    assert "NICOLÒ" in message.encode("iso-8859-1").decode("iso-8859-1")


def test_letters_outside_latin1_are_transliterated() -> None:
    message = merge(replace(RIS_PATIENT, family_name="ȚURCANU", given_name="ȘTEFAN"))
    assert "TURCANU^STEFAN" in message
    message.encode("iso-8859-1")


def test_control_characters_cannot_end_a_segment() -> None:
    message = merge(replace(RIS_PATIENT, given_name="NICOLÒ\rMRG|X"))
    assert len(message.split("\r")) == 5  # MSH EVN PID MRG + final CR
    assert field(message, "PID.F5.R1.C2") == "NICOLÒ MRG|X"


def test_unknown_sex_and_birth_date_are_left_empty() -> None:
    message = merge(replace(RIS_PATIENT, sex="X", birth_date=None))
    assert field(message, "PID.F7") == ""
    assert field(message, "PID.F8") == ""
    validated(message)


@pytest.mark.parametrize("control_id", ["", "X" * 21, "A|B", "A^B"])
def test_control_id_must_be_short_and_plain(control_id: str) -> None:
    with pytest.raises(ValueError, match="MSH-10"):
        build_merge(replace(IDS, control_id=control_id), RIS_PATIENT, EXTERNAL)


def test_same_ids_build_the_same_message() -> None:
    """What a retry relies on: the resend carries the same MSH-10 (and the same bytes)."""
    assert merge() == merge()


# --- OMI^O23 -------------------------------------------------------------------------------


def test_order_archived_is_a_valid_omi_o23_structure() -> None:
    assert validated(archived()).name == "OMI_O23"
    assert str(hl7.parse(archived()).segment("MSH")(9)) == "OMI^O23^OMI_O23"


def test_order_archived_says_completed_for_the_order() -> None:
    message = archived()
    assert [field(message, f"ORC.F{n}") for n in (1, 2, 3, 5)] == ["SC", "ORD-1", "ORD-1", "CM"]
    assert field(message, "OBR.F2") == field(message, "OBR.F3") == "ORD-1"
    assert field(message, "OBR.F18") == "ACC1"
    assert "NTE" not in message


def test_order_archived_lists_each_study_in_an_ipc_with_its_count() -> None:
    parsed = hl7.parse(archived())
    ipcs = [[str(ipc(n)) for n in (1, 2, 3, 4)] for ipc in parsed.segments("IPC")]
    assert ipcs == [
        ["ACC1", "ORD-1", "1.2.3.4", "EXTIMPORT"],
        ["ACC1", "ORD-1", "1.2.3.5", "EXTIMPORT"],
    ]
    observations = [[str(obx(n)) for n in (2, 4, 5)] for obx in parsed.segments("OBX")]
    assert observations == [["NM", "1", "17"], ["ST", "1", "CT chest"], ["NM", "2", "2"]]


def test_order_archived_is_marked_as_an_external_import() -> None:
    message = archived()
    assert field(message, "ORC.F16.R1.C1") == "EXTIMPORT"
    assert field(message, "OBR.F4.R1.C1") == "EXTIMPORT"
    assert field(message, "OBR.F4.R1.C2") == "TC TORACE"
    assert field(message, "OBR.F4.R1.C3") == "L"


@pytest.mark.parametrize(
    ("counts", "control", "status"),
    [((17, 0), "OD", "DC"), ((0, 0), "OC", "CA")],
    ids=["some-archived", "none-archived"],
)
def test_stopped_import_is_discontinued_with_the_reason(
    counts: tuple[int, int], control: str, status: str
) -> None:
    studies = [replace(study, instance_count=n) for study, n in zip(STUDIES, counts, strict=True)]
    message = archived(studies, reason="Import annullato | dall'operatore")
    assert (field(message, "ORC.F1"), field(message, "ORC.F5")) == (control, status)
    assert field(message, "NTE.F3") == "Import annullato | dall'operatore"
    validated(message)


def test_order_archived_needs_a_study() -> None:
    with pytest.raises(ValueError, match="IPC"):
        archived([], reason="cancelled")


# --- ACK -----------------------------------------------------------------------------------

MSH_ACK = "MSH|^~\\&|RIS|AO17|PACSBRIDGE|AO17|20261123101531||ACK^O23^ACK|A1|P|2.5"


def ack(*segments: str, separator: str = "\r") -> str:
    return separator.join((MSH_ACK, *segments)) + separator


def test_read_ack_accept() -> None:
    answer = ack("MSA|AA|PB0000000001")
    assert validated(answer).name == "ACK"
    assert (read_ack(answer).code, read_ack(answer).control_id) == ("AA", "PB0000000001")
    assert read_ack(answer).accepted


@pytest.mark.parametrize(
    ("segments", "text"),
    [
        (("MSA|AE|PB1|Paziente \\T\\ ordine sconosciuti",), "Paziente & ordine sconosciuti"),
        (("MSA|AR|PB1", "ERR|||207^Internal error^HL70357|E||||Disk full"), "Disk full"),
        (("MSA|AE|PB1", "ERR|||103^Table value not found^HL70357|E"), "Table value not found"),
        (("MSA|CR|PB1", "ERR|PID^1^3^204&Unknown key&HL70357"), "Unknown key"),
    ],
    ids=["msa-3", "err-8", "err-3", "err-1-v23"],
)
def test_read_ack_finds_the_text(segments: tuple[str, ...], text: str) -> None:
    answer = read_ack(ack(*segments))
    assert answer.text == text
    assert not answer.accepted


def test_read_ack_accepts_crlf_between_segments() -> None:
    assert read_ack(ack("MSA|AE|PB1|bad", separator="\r\n")).text == "bad"


@pytest.mark.parametrize(
    "answer",
    ["", "HTTP/1.1 400 Bad Request\r\n", MSH_ACK + "\r", ack("MSA|OK|PB1")],
    ids=["empty", "http", "no-msa", "unknown-code"],
)
def test_read_ack_refuses_what_is_not_an_ack(answer: str) -> None:
    with pytest.raises(ValueError):
        read_ack(answer)
