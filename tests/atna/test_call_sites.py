"""The product's own flows write what their ATNA messages need: staff sign-in and sign-out, a
retrieval's query, move and download, an HL7 merge; and the runtime's worker sends the spool."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select

from atna.collector import assert_valid, free_port, xml_of
from atna.helpers import atna_settings, query_level
from conftest import FSE_KEY, launch, pacs_settings
from imports.test_hl7_fields import FIRST, SECOND, _run
from pacsbridge import audit, runtime
from pacsbridge.atna.outbox import AtnaMessage
from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.errors import ApiKeyError
from pacsbridge.settings import Settings
from pacsbridge.staff import accounts
from pacsbridge.web import deps
from retrievals.conftest import AUTH

PASSWORD = "correct horse battery"
SESSION = "/api/v1/staff/session"


def _spool(ctx: Any, schema: Any) -> list[tuple[str, etree._Element]]:  # noqa: ANN401
    """Every spooled message, oldest first, each checked against the schema."""
    with ctx.sessions() as session:
        rows = session.execute(select(AtnaMessage.kind, AtnaMessage.xml).order_by(AtnaMessage.id))
        return [(kind, assert_valid(schema, xml)) for kind, xml in rows]


def test_staff_sign_in_failure_and_sign_out_are_user_authentication_messages(
    make_client,
    collector,
    schema,  # noqa: ANN001
) -> None:
    client = make_client(**atna_settings(collector))
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")
    assert client.post(SESSION, json={"username": "m.rossi", "password": "nope"}).status_code
    assert client.post(SESSION, json={"username": "m.rossi", "password": PASSWORD}).is_success
    csrf = client.get(SESSION).json()["csrf_token"]
    assert client.delete(SESSION, headers={"X-CSRF-Token": csrf}).is_success

    spooled = _spool(ctx, schema)
    assert [k for k, _ in spooled] == [
        "staff.sign_in_failed",
        "staff.signed_in",
        "staff.signed_out",
    ]
    outcomes = [m.find("EventIdentification").get("EventOutcomeIndicator") for _, m in spooled]
    assert outcomes == ["4", "0", "0"]
    types = [m.find("EventIdentification/EventTypeCode").get("csd-code") for _, m in spooled]
    assert types == ["110122", "110122", "110123"]
    people = [m.find("ActiveParticipant[@UserID='m.rossi']") for _, m in spooled]
    # A.5.3.12: the person's network access point is mandatory, at sign-out too
    assert [p.get("NetworkAccessPointID") for p in people] == ["testclient"] * 3
    assert [p.get("NetworkAccessPointTypeCode") for p in people] == ["1"] * 3


def test_a_retrieval_audits_its_query_move_and_download(
    make_gateway,
    pynetdicom_pacs,
    load_study,
    collector,
    schema,  # noqa: ANN001
) -> None:
    study, paths = load_study(pynetdicom_pacs, series_count=2, instances_per_series=2)
    named = {"api_keys": [{"name": "fse-lombardia", "key": FSE_KEY}]}
    gateway = make_gateway(pynetdicom_pacs.peer, fse=named, **atna_settings(collector))
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()
    assert gateway.document(retrieval_id)["state"] == "available"
    package = gateway.client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 200

    by_kind: dict[str, list[etree._Element]] = {}
    spooled = _spool(gateway.ctx, schema)
    for kind, message in spooled:
        by_kind.setdefault(kind, []).append(message)
    [query] = by_kind["retrieval.queried"]
    source = query.find("ActiveParticipant[@UserIsRequestor='false']")
    assert source.get("UserID") == pynetdicom_pacs.peer.ae_title
    # SERIES then IMAGE per series: one Query per C-FIND, however many answers each had
    described = by_kind["retrieval.described"]
    levels = [query_level(m) for m in described]
    assert levels == ["SERIES", "IMAGE", "IMAGE"]
    for message in described:
        assert message.find("EventIdentification/EventID").get("csd-code") == "110112"
        peer = message.find("ActiveParticipant[@UserIsRequestor='false']")
        assert peer.get("UserID") == pynetdicom_pacs.peer.ae_title
    # Begin Transferring before the C-MOVE, Instances Transferred after its answer
    kinds = [kind for kind, _ in spooled]
    assert kinds.index("retrieval.move_started") < kinds.index("retrieval.moved")
    [started] = by_kind["retrieval.move_started"]
    assert started.find("EventIdentification/EventID").get("csd-code") == "110102"
    begun = started.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='2']")
    assert begun.get("ParticipantObjectID") == study.study_instance_uid
    source_of_move = started.find("ActiveParticipant[@UserIsRequestor='false']")
    assert source_of_move.get("UserID") == pynetdicom_pacs.peer.ae_title
    assert source_of_move.get("NetworkAccessPointID") == pynetdicom_pacs.peer.host
    moved = by_kind["retrieval.moved"][0]
    assert moved.find("EventIdentification/EventID").get("csd-code") == "110104"
    study_object = moved.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='2']")
    assert study_object.get("ParticipantObjectID") == study.study_instance_uid
    # no SOP classes are known of a move, so no Accession either (A.5.2: SOPClass is then
    # required); the study is named, as the schema requires a name or a query
    assert study_object.find("ParticipantObjectName").text == study.study_instance_uid
    assert study_object.find("ParticipantObjectDescription") is None
    assert moved.find("EventIdentification").get("EventActionCode") == "R"
    roles = {
        p.get("UserID"): p.find("RoleIDCode").get("csd-code")
        for p in moved.findall("ActiveParticipant")
    }
    assert roles == {pynetdicom_pacs.peer.ae_title: "110153", "PACSBRIDGE": "110152"}
    [download] = by_kind["package.downloaded"]
    requestor = download.find("ActiveParticipant[@UserIsRequestor='true']")
    assert requestor.get("UserID") == "fse-lombardia"  # the name of the API key used
    assert requestor.get("NetworkAccessPointID")
    accessed = download.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='2']")
    assert accessed.get("ParticipantObjectID") == study.study_instance_uid
    patient = download.find("ParticipantObjectIdentification[@ParticipantObjectTypeCode='1']")
    assert patient.get("ParticipantObjectID").startswith(study.patient.patient_id)


def test_an_hl7_merge_is_a_patient_record_update_of_the_ris_patient_naming_the_merged_id(
    make_client,
    pynetdicom_pacs,
    mllp_listener,
    collector,
    schema,
    tmp_path,  # noqa: ANN001
) -> None:
    pacs_hl7 = mllp_listener()
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **atna_settings(collector),
        merge={"enabled": True, "port": pacs_hl7.port},
    )
    token = launch(client)
    studies = [
        SampleStudy(patient=p, series_count=1, instances_per_series=1) for p in (FIRST, SECOND)
    ]
    write_loose(tmp_path / "usb", studies, junk=False)
    _run(client, token, tmp_path / "usb")

    merges = [m for kind, m in _spool(client.app.state.context, schema) if kind == "patient.merged"]
    assert len(merges) == len(pacs_hl7.received) == 2
    merged_ids = set()
    for message in merges:
        event = message.find("EventIdentification")
        assert (event.find("EventID").get("csd-code"), event.get("EventActionCode")) == (
            "110110",
            "U",
        )
        [patient] = message.findall("ParticipantObjectIdentification")
        assert patient.get("ParticipantObjectID") == "IOTELU1234^^^AO17"
        detail = patient.find("ParticipantObjectDetail[@type='MergedPatientID']")
        merged_ids.add(base64.b64decode(detail.get("value")).decode())
    assert merged_ids == {"EXT-1", "EXT-2"}


def test_the_worker_of_the_runtime_delivers_the_spool_by_itself(
    make_settings,
    collector,
    schema,  # noqa: ANN001
) -> None:
    settings = make_settings(**atna_settings(collector), dicom={"port": free_port()})
    built = runtime.build(settings)
    try:
        built.start_worker()
        with built.context.sessions.begin() as session:
            audit.record(
                session,
                built.context.clock.now(),
                "staff.signed_in",
                actor="m.rossi",
                address="::1",
            )
        [message] = collector.wait_for(1)
    finally:
        built.close()
    root = assert_valid(schema, xml_of(message))
    assert (
        root.find("ActiveParticipant[@UserID='m.rossi']").get("NetworkAccessPointTypeCode") == "2"
    )


def test_the_support_console_audit_export_is_an_audit_log_used_by_the_staff_member(
    make_client,
    collector,
    schema,  # noqa: ANN001
) -> None:
    client = make_client(**atna_settings(collector))
    ctx = client.app.state.context
    accounts.add(ctx, "m.rossi", PASSWORD, "support")
    assert client.post(SESSION, json={"username": "m.rossi", "password": PASSWORD}).is_success
    wanted = {"dal": "2026-12-01", "al": "2026-12-02", "formato": "json"}
    assert client.get("/support/audit/export", params=wanted).status_code == 200

    [used] = [m for kind, m in _spool(ctx, schema) if kind == "audit.exported"]
    event = used.find("EventIdentification")
    assert (event.find("EventID").get("csd-code"), event.get("EventActionCode")) == ("110101", "R")
    person = used.find("ActiveParticipant[@UserIsRequestor='true']")
    assert person.get("UserID") == "m.rossi" and person.get("NetworkAccessPointID")
    [log] = used.findall("ParticipantObjectIdentification")
    assert log.get("ParticipantObjectTypeCodeRole") == "13"
    assert log.get("ParticipantObjectID").endswith(
        "/support/audit/export?dal=2026-12-01&al=2026-12-02&formato=json"
    )


def test_a_bare_fse_key_is_named_by_its_place_and_a_named_one_by_its_name() -> None:
    keys = Settings(fse={"api_keys": [{"name": "fse-lombardia", "key": "k1"}, "k2"]}).fse.api_keys
    assert deps._check_key("k1", keys, "fse-key") == "fse-lombardia"
    assert deps._check_key("k2", keys, "fse-key") == "fse-key-2"
    with pytest.raises(ApiKeyError):
        deps._check_key("k3", keys, "fse-key")
