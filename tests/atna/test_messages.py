"""Every ATNA message we build is valid against the PS3.15 A.5.1 schema and says what A.5.3 asks."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

import pytest
from lxml import etree
from pydicom.filereader import read_dataset

from atna.collector import assert_valid
from atna.samples import EVENTS, EXPORT_URI, QUERY, SERIES_QUERY, STUDY
from pacsbridge.atna.events import BUILDERS, Node, Record
from pacsbridge.audit import KINDS
from pacsbridge.settings import Settings

AT = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
NODE = Node.from_settings(
    Settings(
        dicom={"ae_title": "PACSBRIDGE", "host": "10.0.0.5"},
        pacs={"ae_title": "PACS", "host": "10.0.0.9"},
        atna={"audit_source_id": "PACSBRIDGE-1", "enterprise_site_id": "AO17"},
    )
)


def _build(kind: str) -> etree._Element:
    values, _ = EVENTS[kind]
    values = dict(values)
    actor, outcome = values.pop("actor", ""), values.pop("outcome", "ok")
    xml = BUILDERS[kind](Record(kind, AT, actor, outcome, "", values), NODE)
    assert xml is not None
    return etree.fromstring(xml)


def test_every_mapped_kind_is_an_audit_kind_and_has_a_sample() -> None:
    assert set(BUILDERS) <= set(KINDS)
    assert set(BUILDERS) == set(EVENTS)


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_each_message_is_valid_against_the_a51_schema_with_its_event_id(kind, schema) -> None:  # noqa: ANN001
    root = assert_valid(schema, etree.tostring(_build(kind)))
    assert root.find("EventIdentification/EventID").get("csd-code") == EVENTS[kind][1]
    assert root.find("AuditSourceIdentification").get("AuditSourceID") == "PACSBRIDGE-1"
    assert root.find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "AO17"
    assert root.findall("ActiveParticipant[@UserIsRequestor='true']"), "someone asked"


def test_store_names_source_destination_patient_and_study_with_sop_class_and_accession() -> None:
    root = _build("store.completed")
    roles = {
        p.get("UserID"): p.find("RoleIDCode").get("csd-code")
        for p in root.findall("ActiveParticipant")
    }
    assert roles == {"PACSBRIDGE": "110153", "PACS": "110152"}
    assert root.find("ActiveParticipant[@UserID='PACS']").get("NetworkAccessPointID") == "10.0.0.9"
    study = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']")
    assert study.get("ParticipantObjectID") == STUDY
    description = study.find("ParticipantObjectDescription")
    assert description.find("SOPClass").get("NumberOfInstances") == "6"
    assert description.find("Accession").get("Number") == "ACC1"
    patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
    assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"


def test_query_carries_the_identifier_in_base64_and_its_transfer_syntax() -> None:
    root = _build("duplicates.queried")
    query = root.find("ParticipantObjectIdentification")
    assert query.get("ParticipantObjectID") == "1.2.840.10008.5.1.4.1.2.2.1"
    assert query.find("ParticipantObjectQuery").text == QUERY
    detail = query.find("ParticipantObjectDetail")
    assert detail.get("type") == "TransferSyntax"
    assert base64.b64decode(detail.get("value")) == b"1.2.840.10008.1.2.1"


def test_failed_sign_in_is_a_minor_failure_login_with_the_address() -> None:
    root = _build("staff.sign_in_failed")
    event = root.find("EventIdentification")
    assert event.get("EventOutcomeIndicator") == "4"
    assert event.find("EventTypeCode").get("csd-code") == "110122"
    user = root.find("ActiveParticipant[@UserID='mrossi']")
    assert user.get("NetworkAccessPointID") == "10.1.2.3"
    assert user.get("NetworkAccessPointTypeCode") == "2"
    assert (
        _build("staff.signed_out").find("EventIdentification/EventTypeCode").get("csd-code")
        == "110123"
    )


def test_viewing_without_any_study_sends_nothing() -> None:
    record = Record("images.viewed", AT, "viewer-link", details={"via": "viewer"})
    assert BUILDERS["images.viewed"](record, NODE) is None


def test_the_schema_rejects_a_message_without_an_active_participant(schema) -> None:  # noqa: ANN001
    root = _build("staff.signed_in")
    for participant in root.findall("ActiveParticipant"):
        root.remove(participant)
    assert not schema.validate(root)


def _roles(root: etree._Element) -> dict[str, str]:
    return {
        p.get("UserID"): p.find("RoleIDCode").get("csd-code")
        for p in root.findall("ActiveParticipant")
        if p.find("RoleIDCode") is not None
    }


def test_move_started_is_a_begin_transferring_from_the_source_to_us_with_the_study() -> None:
    root = _build("retrieval.move_started")
    event = root.find("EventIdentification")
    assert (event.find("EventID").get("csd-code"), event.get("EventActionCode")) == ("110102", "E")
    assert _roles(root) == {"SRC": "110153", "PACSBRIDGE": "110152"}
    assert root.find("ActiveParticipant[@UserID='PACSBRIDGE']").get("UserIsRequestor") == "true"
    assert root.find("ActiveParticipant[@UserID='SRC']").get("NetworkAccessPointID") == "127.0.0.1"
    study = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='2']")
    assert study.get("ParticipantObjectID") == STUDY
    assert study.find("ParticipantObjectName").text == STUDY
    patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
    assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"


@pytest.mark.parametrize(
    ("kind", "peer"), [("retrieval.described", "SRC"), ("store.queried", "PACS")]
)
def test_series_level_queries_carry_their_own_identifier_and_name_the_peer(kind, peer) -> None:  # noqa: ANN001
    root = _build(kind)
    [query, patient] = root.findall("ParticipantObjectIdentification")
    assert query.find("ParticipantObjectQuery").text == SERIES_QUERY
    sent = read_dataset(io.BytesIO(base64.b64decode(SERIES_QUERY)), False, True)
    assert sent.QueryRetrieveLevel == "SERIES" and "SeriesInstanceUID" in sent
    assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"
    assert _roles(root) == {"PACSBRIDGE": "110153", peer: "110152"}


def test_download_names_the_fse_client_of_the_api_key_as_the_requestor_with_its_address() -> None:
    root = _build("package.downloaded")
    [requestor] = root.findall("ActiveParticipant[@UserIsRequestor='true']")
    assert requestor.get("UserID") == "fse-lombardia"
    assert requestor.get("NetworkAccessPointID") == "10.9.8.7"
    application = root.find("ActiveParticipant[@UserIsRequestor='false']")
    assert application.find("RoleIDCode").get("csd-code") == "110150"


def test_audit_export_is_audit_log_used_reading_the_security_audit_log_by_its_uri() -> None:
    root = _build("audit.exported")
    event = root.find("EventIdentification")
    assert (event.find("EventID").get("csd-code"), event.get("EventActionCode")) == ("110101", "R")
    person = root.find("ActiveParticipant[@UserIsRequestor='true']")
    assert (person.get("UserID"), person.get("NetworkAccessPointID")) == ("mrossi", "10.1.2.3")
    [log] = root.findall("ParticipantObjectIdentification")
    assert (log.get("ParticipantObjectTypeCode"), log.get("ParticipantObjectTypeCodeRole")) == (
        "2",
        "13",
    )
    assert log.find("ParticipantObjectIDTypeCode").get("csd-code") == "12"
    assert log.get("ParticipantObjectID") == EXPORT_URI
    assert log.find("ParticipantObjectName").text == "Security Audit Log"


def test_a_query_that_failed_is_a_serious_failure() -> None:
    values = dict(EVENTS["retrieval.described"][0])
    record = Record("retrieval.described", AT, "", "error", "", values)
    root = etree.fromstring(BUILDERS["retrieval.described"](record, NODE))
    assert root.find("EventIdentification").get("EventOutcomeIndicator") == "8"


# What PS3.15 asks beyond what the old hand-written schema checked (docs/atna.md, "Conformance").


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_every_participant_object_has_a_name_or_a_query_right_after_its_id_type(kind) -> None:  # noqa: ANN001
    """A.5.1 schema: ParticipantObjectName | ParticipantObjectQuery is required, not optional."""
    for element in _build(kind).findall("ParticipantObjectIdentification"):
        second = [child.tag for child in element][1]
        assert second in {"ParticipantObjectName", "ParticipantObjectQuery"}


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_accession_and_sop_classes_sit_in_the_description_and_accession_never_alone(kind) -> None:  # noqa: ANN001
    """A.5.1: they are ParticipantObjectDescription content; A.5.2: SOPClass is then required."""
    root = _build(kind)
    for element in root.findall("ParticipantObjectIdentification"):
        assert element.find("SOPClass") is None and element.find("Accession") is None
        for description in element.findall("ParticipantObjectDescription"):
            assert description.find("SOPClass") is not None
            tags = [child.tag for child in description]
            assert tags == sorted(tags, key=["MPPS", "Accession", "SOPClass"].index)


@pytest.mark.parametrize("kind", ["store.completed", "retrieval.moved"])
def test_instances_transferred_is_a_read_when_we_do_not_know_the_receiver_lacked_them(
    kind,  # noqa: ANN001
) -> None:
    """A.5.3.7: C and U only for a receiver that knows; a sender, or a receiver in doubt, R."""
    assert _build(kind).find("EventIdentification").get("EventActionCode") == "R"


@pytest.mark.parametrize("kind", ["staff.signed_in", "staff.sign_in_failed", "staff.signed_out"])
def test_user_authentication_gives_the_persons_network_access_point(kind) -> None:  # noqa: ANN001
    """A.5.3.12: NetworkAccessPointTypeCode and NetworkAccessPointID are mandatory (M)."""
    person = _build(kind).find("ActiveParticipant[@UserID='mrossi']")
    assert (person.get("NetworkAccessPointID"), person.get("NetworkAccessPointTypeCode")) == (
        "10.1.2.3",
        "2",
    )


def test_the_patient_is_named_by_the_patient_name_when_the_event_has_it(schema) -> None:  # noqa: ANN001
    values = {**EVENTS["images.viewed"][0], "patient_name": "ROSSI^MARIO"}
    values.pop("actor")
    xml = BUILDERS["images.viewed"](
        Record("images.viewed", AT, "viewer-link", "ok", "", values), NODE
    )
    root = assert_valid(schema, xml)
    patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
    assert patient.find("ParticipantObjectName").text == "ROSSI^MARIO"


def test_the_schema_requires_a_name_or_a_query_in_a_participant_object(schema) -> None:  # noqa: ANN001
    root = _build("audit.exported")
    log = root.find("ParticipantObjectIdentification")
    log.remove(log.find("ParticipantObjectName"))
    assert not schema.validate(root)


def test_the_schema_requires_number_of_instances_and_not_the_uid_of_a_sop_class(schema) -> None:  # noqa: ANN001
    root = _build("store.completed")
    sop_class = root.find(".//ParticipantObjectDescription/SOPClass")
    del sop_class.attrib["UID"]
    assert schema.validate(root), schema.error_log
    del sop_class.attrib["NumberOfInstances"]
    assert not schema.validate(root)


def test_the_schema_takes_a_bare_audit_source_type_digit_and_rejects_purpose_of_use(schema) -> None:  # noqa: ANN001
    """A.5.1.1: AuditSourceTypeCodeContent's code system and meaning are optional together;
    PurposeOfUse is an IHE addition that A.5.1 does not have."""
    root = _build("staff.signed_in")
    source = root.find("AuditSourceIdentification")
    etree.SubElement(source, "AuditSourceTypeCode", {"csd-code": "4"})
    assert schema.validate(root), schema.error_log
    event = root.find("EventIdentification")
    etree.SubElement(
        event, "PurposeOfUse", {"csd-code": "X", "codeSystemName": "X", "originalText": "X"}
    )
    assert not schema.validate(root)


@pytest.mark.parametrize(("role", "valid"), [("25", True), ("26", True), ("27", False)])
def test_the_schema_knows_object_roles_up_to_26(schema, role, valid) -> None:  # noqa: ANN001
    """A.5.1.1 lists 25 Data Source and 26 Processing Element beyond the table's 24."""
    root = _build("audit.exported")
    root.find("ParticipantObjectIdentification").set("ParticipantObjectTypeCodeRole", role)
    assert bool(schema.validate(root)) is valid
