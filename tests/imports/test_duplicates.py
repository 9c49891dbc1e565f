"""Duplicate check against real PACS peers: present, conflict, partial."""

from __future__ import annotations

from conftest import bearer, launch, pacs_settings
from imports.helpers import upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose
from pacsbridge.imports import workspace

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")


def _study_files(tmp_path, name, study):
    return write_loose(tmp_path / name, [study], junk=False)


def test_study_on_the_pacs_is_dropped_and_its_files_deleted(make_client, pacs, tmp_path):
    client = make_client(**pacs_settings(pacs))
    token = launch(client)
    old = SampleStudy(patient=MATCHING, series_count=1, instances_per_series=2)
    new = SampleStudy(
        patient=MATCHING, series_count=1, instances_per_series=2, description="RM ENCEFALO"
    )
    pacs.load(_study_files(tmp_path, "preload", old))
    write_cd(tmp_path / "cd", [old, new])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    studies = {s["study_instance_uid"]: s for s in document["patients"][0]["studies"]}
    assert studies[old.study_instance_uid]["already_on_pacs"] is True, studies  # why, if not
    assert studies[old.study_instance_uid]["selected"] is False
    assert studies[old.study_instance_uid]["messages"] == [
        "Già presente su PACS, rimosso da importazione"
    ]
    assert studies[new.study_instance_uid]["already_on_pacs"] is False
    assert studies[new.study_instance_uid]["selected"] is True
    files = workspace.files_dir(client.app.state.context.data_dir, document["id"])
    assert len([p for p in files.rglob("*") if p.is_file() and "PT" in str(p)]) == 2


def test_same_uid_under_another_patient_is_a_conflict(make_client, pacs, tmp_path):
    client = make_client(**pacs_settings(pacs))
    token = launch(client)
    study = SampleStudy(patient=MATCHING, series_count=1, instances_per_series=1)
    intruder = SampleStudy(
        patient=SamplePatient(name="ALTRO^PAZIENTE", patient_id="OTHER9"),
        series_count=1,
        instances_per_series=1,
        study_instance_uid=study.study_instance_uid,
    )
    pacs.load(_study_files(tmp_path, "preload", intruder))
    write_cd(tmp_path / "cd", [study])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    [found] = document["patients"][0]["studies"]
    assert found["pacs_status"] == "conflict"
    assert "OTHER9" in found["messages"][0]
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        json={"study_instance_uids": [study.study_instance_uid]},
        headers=bearer(token),
    )
    assert answer.status_code == 409


def test_fewer_instances_on_the_pacs_is_partial(make_client, pacs, tmp_path):
    client = make_client(**pacs_settings(pacs))
    token = launch(client)
    study = SampleStudy(patient=MATCHING, series_count=1, instances_per_series=3)
    paths = _study_files(tmp_path, "media", study)
    pacs.load(paths[:1])
    document = upload(client, token, zip_folder(tmp_path / "media"))
    [found] = document["patients"][0]["studies"]
    assert found["pacs_status"] == "partial"
    assert found["messages"] == ["Parzialmente presente su PACS (1 di 3 immagini)"]
    assert found["already_on_pacs"] is False


TLS_REFUSED = {
    "it": "Connessione TLS con PACS rifiutata: certificato non valido",
    "en": "TLS connection with PACS refused: invalid certificate",
}


def test_a_pacs_refusing_our_tls_certificate_is_named_on_the_page_and_in_the_audit(
    make_client, pki, tls_orthanc, tmp_path
):
    """The PACS (Orthanc, DICOM TLS only) trusts the test CA; our certificate comes from
    another CA, so the handshake of the duplicate check fails on our certificate."""
    orthanc = tls_orthanc(pki.issue("orthanc"))
    ours = pki.issue("pacsbridge", untrusted=True)
    client = make_client(
        dicom={
            "connection_timeout": 3,
            "acse_timeout": 5,
            "tls": {
                "cert_file": str(ours.certificate),
                "key_file": str(ours.private_key),
                "ca_file": str(pki.ca_certificates),
            },
        },
        pacs={
            "name": "PACS",
            "ae_title": orthanc.ae_title,
            "host": "127.0.0.1",
            "port": orthanc.port,
            "tls": True,
        },
    )
    token = launch(client)
    client.get(f"/imports/start?token={token}", follow_redirects=False)  # the page's cookie
    study = SampleStudy(patient=MATCHING, series_count=1, instances_per_series=1)
    write_cd(tmp_path / "cd", [study])
    document = upload(client, token, zip_folder(tmp_path / "cd"))
    [found] = document["patients"][0]["studies"]

    assert found["pacs_status"] == "unknown"
    assert found["messages"] == [TLS_REFUSED["it"]]  # not "PACS non raggiungibile"
    assert found["pacs_error"]["code"] == "peer_tls_refused"
    assert "certificate" in found["pacs_error"]["detail"]  # OpenSSL's reason, for support
    for lang, words in TLS_REFUSED.items():
        page = client.get(f"/imports/{document['id']}/confirm", headers={"Accept-Language": lang})
        assert page.status_code == 200, page.text
        assert words in page.text
        assert "Riprova" in page.text or lang == "en"  # the check can still be asked again
        events = client.get(
            f"/api/v1/imports/{document['id']}/events",
            headers={**bearer(token), "Accept-Language": lang},
        ).json()["events"]
        [unreachable] = [e for e in events if e["kind"] == "duplicates.unreachable"]
        assert unreachable["message"] == words
        assert "certificate" in unreachable["details"]["detail"]
