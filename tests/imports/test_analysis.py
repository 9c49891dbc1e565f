"""Analysis through the API: verdicts, problems, bad media, PACS unreachable."""

from __future__ import annotations

from sqlalchemy import select

from conftest import bearer, launch
from imports.helpers import upload, zip_entries, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose
from pacsbridge.imports import workspace

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")


def _kinds(client, import_id):
    with client.app.state.context.sessions() as session:
        query = select(AuditEvent.kind).where(AuditEvent.import_id == import_id)
        return list(session.scalars(query))


def test_matching_patient_from_a_cd(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    study = SampleStudy(patient=MATCHING, series_count=2, instances_per_series=3)
    write_cd(tmp_path / "cd", [study])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    assert document["state"] == "awaiting_confirmation"
    assert document["used_dicomdir"] is True
    [patient] = document["patients"]
    assert patient["verdict"] == "match"
    assert patient["messages"] == ["PAZIENTE CORRISPONDE"]
    assert patient["birth_date"] == "1974-01-01"
    [found] = patient["studies"]
    assert found["study_instance_uid"] == study.study_instance_uid
    assert (found["series_count"], found["instance_count"]) == (2, 6)
    assert found["date"] == "2024-06-01" and found["time"] == "09:14:54"
    assert document["ris_patient"]["family_name"] == "TEST"


def test_mismatching_patient_gets_the_spec_messages(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    cerri = SamplePatient(name="CERRI*SIMONE", patient_id="97119460", birth_date="19720530")
    write_loose(tmp_path / "usb", [SampleStudy(patient=cerri, series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    [patient] = document["patients"]
    assert patient["verdict"] == "mismatch"
    assert "NOME NON CORRISPONDE" in patient["messages"]
    assert "DATA NASCITA NON CORRISPONDE" in patient["messages"]
    assert patient["name"] == "CERRI*SIMONE"


def test_latin1_names_are_decoded(make_client, tmp_path):
    client = make_client()
    body = {
        "patient": {
            "id": "P1",
            "family_name": "D'ANGELO",
            "given_name": "NICOLÒ",
            "birth_date": "1974-01-01",
            "sex": "M",
        },
        "order": {"number": "O1"},
    }
    token = launch(client, body)
    patient = SamplePatient(name="D'ANGELO^NICOLÒ", birth_date="19740101", sex="M")
    write_loose(tmp_path / "usb", [SampleStudy(patient=patient, series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    assert document["patients"][0]["name"] == "D'ANGELO^NICOLÒ"
    assert document["patients"][0]["verdict"] == "match"


def test_unreachable_pacs_is_a_problem_and_blocks_confirmation(make_client, tmp_path):
    client = make_client()  # the default test PACS (port 1) answers nothing
    token = launch(client)
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    study = document["patients"][0]["studies"][0]
    assert study["pacs_status"] == "unknown"
    assert study["already_on_pacs"] is False
    assert study["messages"][0].startswith("PACS non raggiungibile")
    answer = client.post(f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token))
    assert answer.status_code == 409
    assert "duplicates.unreachable" in _kinds(client, document["id"])


def test_broken_zip_fails_clearly_and_keeps_the_upload(make_client):
    client = make_client()
    token = launch(client)
    document = upload(client, token, b"PK\x03\x04 this is not really a zip" * 10)
    assert document["state"] == "failed"
    assert document["error"]["code"] == "archive_broken"
    assert document["error"]["message"].startswith("Archivio ZIP danneggiato")
    ctx = client.app.state.context
    assert workspace.archive_path(ctx.data_dir, document["id"]).exists()
    assert "analysis.failed" in _kinds(client, document["id"])


def test_zip_slip_is_refused_and_nothing_is_written_outside(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    body = zip_entries({"ok.txt": b"hello", "../../evil.txt": b"owned"})
    document = upload(client, token, body)
    assert document["state"] == "failed"
    assert document["error"]["code"] == "archive_unsafe"
    ctx = client.app.state.context
    assert not list(ctx.data_dir.rglob("evil.txt"))


def test_media_without_dicom_says_so(make_client):
    client = make_client()
    token = launch(client)
    document = upload(client, token, zip_entries({"AUTORUN.INF": b"[autorun]", "a.pdf": b"%PDF"}))
    assert document["state"] == "failed"
    assert document["error"]["message"] == "Nessun file DICOM trovato nel supporto"


def test_a_truncated_file_is_reported_and_the_rest_kept(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    paths = write_loose(
        tmp_path / "usb", [SampleStudy(patient=MATCHING, series_count=1, instances_per_series=3)]
    )
    paths[0].write_bytes(paths[0].read_bytes()[:200])
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    assert document["state"] == "awaiting_confirmation"
    assert document["patients"][0]["studies"][0]["instance_count"] == 2
    assert any(p["file"] and p["file"].endswith(paths[0].name) for p in document["problems"])
    assert "analysis.problem" in _kinds(client, document["id"])
