"""An FSE retrieval entirely over DICOM TLS: C-FIND and C-MOVE to an Orthanc source with DICOM
TLS on, whose C-STOREs reach our Storage SCP (dicom.tls.scp) with TLS and a trusted client
certificate (docs/pacs-setup.md, "DICOM TLS")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.retrievals import tasks
from peers.pki import Pki
from retrievals.conftest import SOURCE, Gateway, fresh_accession, fresh_patient


def _gateway(make_client: Any, pki: Pki, address: tuple[str, int], source_port: int) -> Gateway:
    ours = pki.issue("pacsbridge")
    tls = {
        "scp": True,
        "cert_file": str(ours.certificate),
        "key_file": str(ours.private_key),
        "ca_file": str(ours.ca_certificates),
    }
    client = make_client(
        jobs={"backend": "sqlite", "retry_delay_seconds": 1},
        dicom={
            "ae_title": "PACSBRIDGE",
            "host": address[0],
            "port": address[1],
            "acse_timeout": 5,
            "dimse_timeout": 20,
            "connection_timeout": 2,
            "tls": tls,
        },
        sources=[
            {
                "name": SOURCE,
                "ae_title": "PACS",
                "host": "127.0.0.1",
                "port": source_port,
                "tls": True,
            }
        ],
        fse={"quiet_period_seconds": 0.3, "move_timeout_seconds": 30},
    )
    gateway = Gateway(client, Path())
    assert gateway.ctx.listener.ensure() is not None  # our TLS Storage SCP listens
    tasks.on_start(gateway.ctx)
    return gateway


def test_retrieval_from_a_tls_source_into_our_tls_scp_is_available(
    make_client: Any, pki: Pki, tls_orthanc: Any, our_scp_address: tuple[str, int], tmp_path: Path
) -> None:
    orthanc = tls_orthanc(pki.issue("orthanc"), {"PACSBRIDGE": our_scp_address})
    study = SampleStudy(
        patient=fresh_patient(),
        accession_number=fresh_accession(),
        series_count=2,
        instances_per_series=2,
    )
    orthanc.load(write_loose(tmp_path / "source", [study], junk=False))
    gateway = _gateway(make_client, pki, our_scp_address, orthanc.port)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == 4
    assert document["errors"] == []
    assert gateway.events("scp.intruder") == []


def test_retrieval_from_a_source_whose_certificate_is_not_trusted_fails_with_the_tls_error(
    make_client: Any, pki: Pki, tls_orthanc: Any, our_scp_address: tuple[str, int], tmp_path: Path
) -> None:
    orthanc = tls_orthanc(pki.issue("orthanc"), {"PACSBRIDGE": our_scp_address})
    orthanc.restart_with(pki.issue("orthanc", untrusted=True))
    gateway = _gateway(make_client, pki, our_scp_address, orthanc.port)

    retrieval_id = gateway.request([fresh_accession()])
    gateway.run()

    document = gateway.document(retrieval_id)
    assert document["state"] == "failed", document  # permanent: no retries, no back-off
    [error] = document["errors"]
    assert error["code"] == "peer_tls_refused"
    assert error["message"] == "Connessione TLS con ao17 rifiutata: certificato non valido"
    assert "unable to get local issuer certificate" in error["detail"]
