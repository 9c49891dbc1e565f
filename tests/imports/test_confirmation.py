"""Confirm and cancel (manual §4.C): selection rules, state conflicts, files deleted."""

from __future__ import annotations

from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import upload, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose
from pacsbridge.imports import workspace

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")


def _analysed(client, tmp_path):
    token = launch(client)
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    return token, upload(client, token, zip_folder(tmp_path / "cd"))


def test_cancel_deletes_every_temporary_file(make_client, tmp_path):
    client = make_client()
    token, document = _analysed(client, tmp_path)
    folder = workspace.folder(client.app.state.context.data_dir, document["id"])
    assert folder.exists()
    answer = client.post(f"/api/v1/imports/{document['id']}/cancel", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json()["state"] == "cancelled"
    assert not folder.exists()
    again = client.post(f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token))
    assert again.status_code == 409


def test_confirm_twice_is_a_conflict(make_client, pynetdicom_pacs, tmp_path):
    client = make_client(**pacs_settings(pynetdicom_pacs))
    token, document = _analysed(client, tmp_path)
    url = f"/api/v1/imports/{document['id']}/confirm"
    first = client.post(url, headers=bearer(token))
    assert first.status_code == 202
    assert first.json()["state"] != "awaiting_confirmation"
    second = client.post(url, headers=bearer(token))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "conflict"


def test_confirm_an_unknown_study_is_422(make_client, pynetdicom_pacs, tmp_path):
    client = make_client(**pacs_settings(pynetdicom_pacs))
    token, document = _analysed(client, tmp_path)
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        json={"study_instance_uids": ["1.2.3"]},
        headers=bearer(token),
    )
    assert answer.status_code == 422


def test_history_lists_attempts_with_badges(make_client, tmp_path):
    client = make_client()
    token, document = _analysed(client, tmp_path)
    client.post(f"/api/v1/imports/{document['id']}/cancel", headers=bearer(token))
    client.post("/api/v1/imports", headers=bearer(token))
    history = client.get("/api/v1/imports", headers=bearer(token)).json()["imports"]
    assert [h["badge"] for h in history] == ["request_created", "failed"]
    assert history[0]["link"] is None and history[1]["link"].endswith("/monitor")
    events = client.get(f"/api/v1/imports/{document['id']}/events", headers=bearer(token))
    kinds = [e["kind"] for e in events.json()["events"]]
    assert kinds[0] == "import.created" and kinds[-2:] == ["import.cancelled", "files.deleted"]
    with client.app.state.context.sessions() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.kind == "upload.completed"))


def test_recheck_after_the_pacs_was_unreachable(make_client, pynetdicom_pacs, relay, tmp_path):
    """Duplicate check impossible → no confirm; once the PACS answers, recheck unblocks it."""
    pacs = {"ae_title": pynetdicom_pacs.peer.ae_title, "host": relay.host, "port": relay.port}
    client = make_client(pacs=pacs)  # nothing answers at the PACS's address yet
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    [study] = document["patients"][0]["studies"]
    assert study["pacs_status"] == "unknown"
    refused = client.post(f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token))
    assert refused.status_code == 409

    relay.up(pynetdicom_pacs.peer.port)  # the PACS answers now
    again = client.post(f"/api/v1/imports/{document['id']}/recheck", headers=bearer(token))

    assert again.status_code == 202, again.text
    [study] = again.json()["patients"][0]["studies"]
    assert study["pacs_status"] == "absent"
    assert again.json()["state"] == "awaiting_confirmation"


OTHER = SamplePatient(name="ROSSI^MARIO", patient_id="EXT2", birth_date="19500505", sex="M")


def test_confirm_of_a_mismatching_patient_needs_the_acknowledgement_field(
    make_client, pynetdicom_pacs, tmp_path
):  # noqa: ANN001
    """The page's second confirmation is enforced by the API too, and audited."""
    client = make_client(**pacs_settings(pynetdicom_pacs))
    token = launch(client)
    write_cd(tmp_path / "cd", [SampleStudy(patient=OTHER, series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    assert [p["verdict"] for p in document["patients"]] == ["mismatch"]
    url = f"/api/v1/imports/{document['id']}/confirm"

    refused = client.post(url, headers=bearer(token), json={})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "identity_not_acknowledged"
    assert "confermare esplicitamente" in refused.json()["error"]["message"]

    accepted = client.post(url, headers=bearer(token), json={"identity_acknowledged": True})
    assert accepted.status_code == 202, accepted.text
    with client.app.state.context.sessions() as session:
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "identity.acknowledged")
        ).all()
    assert event.details["verdicts"] == ["mismatch"] and event.actor == "Operatore Uno"


def test_confirm_of_a_matching_patient_needs_no_acknowledgement(
    make_client, pynetdicom_pacs, tmp_path
):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs))
    token, document = _analysed(client, tmp_path)
    answer = client.post(f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token))
    assert answer.status_code == 202, answer.text
