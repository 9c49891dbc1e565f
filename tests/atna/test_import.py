"""An import against a real PACS produces its ATNA messages, and never waits for the collector."""

from __future__ import annotations

from lxml import etree
from sqlalchemy import select

from atna.collector import Rsyslog, assert_valid, xml_of
from atna.helpers import atna_settings, query_level, send_all, spooled
from conftest import bearer, launch, pacs_settings
from imports.helpers import drain, state_of, upload, zip_folder
from pacsbridge.atna.outbox import AtnaMessage
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-77", birth_date="19740101", sex="M")


def _by_event(received) -> dict[str, list[etree._Element]]:  # noqa: ANN001
    found: dict[str, list[etree._Element]] = {}
    for message in received:
        root = etree.fromstring(xml_of(message))
        found.setdefault(root.find("EventIdentification/EventID").get("csd-code"), []).append(root)
    return found


def _study_ids(root: etree._Element) -> list[str]:
    query = "ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']"
    return [o.get("ParticipantObjectID") for o in root.findall(query)]


def test_import_completes_with_the_collector_down_and_its_transfer_messages_arrive_later(
    make_client,
    pynetdicom_pacs,
    tmp_path,
    schema,  # noqa: ANN001
) -> None:
    collector = Rsyslog(tmp_path / "late")  # down during the whole import
    client = make_client(**pacs_settings(pynetdicom_pacs), **atna_settings(collector))
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=3)
    write_cd(tmp_path / "cd", [study])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    drain(client)
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token), json={}
    )
    assert answer.status_code == 202, answer.text
    drain(client)
    assert state_of(client, token, document["id"]) == "completed"
    assert send_all(ctx) == 0  # nobody listens: everything stays spooled
    assert spooled(ctx) >= 3

    collector.start()
    try:
        expected = spooled(ctx)
        assert send_all(ctx) == expected
        received = collector.wait_for(expected)
    finally:
        collector.stop()
    assert len(received) == expected
    for message in received:
        assert_valid(schema, xml_of(message))
    by_event = _by_event(received)
    begin, transferred = by_event["110102"], by_event["110104"]
    assert len(begin) == 1 and len(transferred) == 1
    assert _study_ids(begin[0]) == [study.study_instance_uid]
    assert _study_ids(transferred[0]) == [study.study_instance_uid]
    transfer = transferred[0]
    assert transfer.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    sop_class = transfer.find(".//SOPClass")
    assert sop_class.get("NumberOfInstances") == "3"
    patient = transfer.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
    assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"  # the RIS identity
    destination = transfer.find("ActiveParticipant[@UserIsRequestor='false']")
    assert destination.get("UserID") == pynetdicom_pacs.peer.ae_title
    query = by_event["110112"][0]  # the duplicate check
    assert query.find(".//ParticipantObjectQuery").text
    # the send phase's confirmation: one Query per C-FIND (SERIES, then IMAGE per series)
    levels = [query_level(m) for m in by_event["110112"]]
    assert levels[0] == "STUDY" and levels[1:3] == ["SERIES", "IMAGE"], levels
    for confirming in by_event["110112"][1:]:
        pacs = confirming.find("ActiveParticipant[@UserIsRequestor='false']")
        assert pacs.get("UserID") == pynetdicom_pacs.peer.ae_title
        patient = confirming.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
        assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"


def test_a_duplicate_check_that_lists_instances_sends_one_query_per_c_find(
    make_client,
    pynetdicom_pacs,
    collector,
    tmp_path,
    schema,  # noqa: ANN001
) -> None:
    client = make_client(**pacs_settings(pynetdicom_pacs), **atna_settings(collector))
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=2, instances_per_series=2)
    pynetdicom_pacs.load(write_loose(tmp_path / "preload", [study], junk=False))
    write_cd(tmp_path / "cd", [study])
    upload(client, token, zip_folder(tmp_path / "cd"))

    with client.app.state.context.sessions() as session:
        rows = session.execute(
            select(AtnaMessage.xml)
            .where(AtnaMessage.kind == "duplicates.queried")
            .order_by(AtnaMessage.id)
        )
        queries = [assert_valid(schema, xml) for (xml,) in rows]
    # STUDY, SERIES, then IMAGE per series: one message per C-FIND, not per answer (pynetdicom
    # answers one row per instance at every level)
    assert [query_level(q) for q in queries] == ["STUDY", "SERIES", "IMAGE", "IMAGE"]
    outcomes = {q.find("EventIdentification").get("EventOutcomeIndicator") for q in queries}
    assert outcomes == {"0"}
