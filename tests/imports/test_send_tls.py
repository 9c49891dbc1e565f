"""An import sent to a PACS over DICOM TLS (docs/pacs-setup.md, "DICOM TLS"): stored when the
certificates are trusted; failed at once with the TLS message in the monitor when not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import bearer, launch
from imports.helpers import drain, progress_of, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from peers.pki import Pki

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-77", birth_date="19740101", sex="M")


def _client(make_client: Any, pki: Pki, port: int) -> Any:
    ours = pki.issue("pacsbridge")
    return make_client(
        jobs={"backend": "sqlite"},
        dicom={
            "connection_timeout": 3,
            "acse_timeout": 5,
            "tls": {
                "cert_file": str(ours.certificate),
                "key_file": str(ours.private_key),
                "ca_file": str(ours.ca_certificates),
            },
        },
        pacs={
            "name": "PACS",
            "ae_title": "PACS",
            "host": "127.0.0.1",
            "port": port,
            "tls": True,
        },
    )


def _confirm(client: Any, token: str, import_id: int) -> None:
    answer = client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert answer.status_code == 202, answer.text
    drain(client)


def _import(client: Any, folder: Path) -> tuple[str, int]:
    token = launch(client)
    document = upload(client, token, zip_folder(folder))
    drain(client)
    _confirm(client, token, document["id"])
    return token, document["id"]


def _send_phase(client: Any, token: str, import_id: int) -> dict[str, Any]:
    progress = progress_of(client, token, import_id)
    return next(p for p in progress["phases"] if p["phase"] == "send")


def test_import_to_a_tls_pacs_completes_over_tls(
    make_client: Any, pki: Pki, tls_orthanc: Any, tmp_path: Path
) -> None:
    orthanc = tls_orthanc(pki.issue("orthanc"))
    client = _client(make_client, pki, orthanc.port)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study])

    token, import_id = _import(client, tmp_path / "usb")

    assert progress_of(client, token, import_id)["state"] == "completed"
    assert len(orthanc.instance_uids(study.study_instance_uid)) == 2


def test_import_to_a_pacs_whose_certificate_is_not_trusted_fails_with_the_tls_message(
    make_client: Any, pki: Pki, tls_orthanc: Any, tmp_path: Path
) -> None:
    """Analysed while the PACS had a trusted certificate; by the confirmation it presents one
    from a CA we do not trust (a renewal gone wrong)."""
    orthanc = tls_orthanc(pki.issue("orthanc"))
    client = _client(make_client, pki, orthanc.port)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study])
    token = launch(client)
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    drain(client)
    orthanc.restart_with(pki.issue("orthanc", untrusted=True))

    _confirm(client, token, document["id"])

    send = _send_phase(client, token, document["id"])
    assert send["state"] == "failed", send  # permanent: retrying cannot fix a certificate
    assert "Connessione TLS con PACS rifiutata: certificato non valido" in send["message"]
    assert progress_of(client, token, document["id"])["state"] == "failed"
    assert orthanc.instance_uids(study.study_instance_uid) == set()
