"""What an import adds to /metrics: instances and bytes stored, phase durations, failures.

Counters are process-wide, so each test compares a scrape before with one after its import.
"""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select

from conftest import bearer, launch, pacs_settings, sample, scrape
from imports.helpers import drain, progress_of, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports.models import ImportInstance

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-77", birth_date="19740101", sex="M")
QUEUED = {"jobs": {"backend": "sqlite"}}
PHASE = "pacsbridge_import_phase_duration_seconds_count"


def _import(client, tmp_path: Path, files_hook=None) -> tuple[int, str, list[Path]]:  # noqa: ANN001
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=3)
    files = write_loose(tmp_path / "usb", [study], junk=False)
    if files_hook:
        files_hook(files)
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    drain(client)
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token), json={}
    )
    assert answer.status_code == 202, answer.text
    drain(client)
    return document["id"], token, files


def test_a_completed_import_counts_its_instances_bytes_and_phase_durations(
    make_client, pynetdicom_pacs, tmp_path
) -> None:  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)
    before = scrape(client)

    import_id, token, _ = _import(client, tmp_path)

    assert progress_of(client, token, import_id)["state"] == "completed"
    after = scrape(client)
    stored = "pacsbridge_instances_stored_total"
    assert sample(after, stored, peer="PACS") - sample(before, stored, peer="PACS") == 3
    with client.app.state.context.sessions() as session:
        sizes = session.scalars(
            select(ImportInstance.size_bytes).where(ImportInstance.import_id == import_id)
        ).all()
    grown = sample(after, "pacsbridge_bytes_stored_total", peer="PACS") - sample(
        before, "pacsbridge_bytes_stored_total", peer="PACS"
    )
    assert grown == sum(sizes) > 0
    for phase, outcome in (("send", "completed"), ("verify", "completed"), ("merge", "skipped")):
        labels = {"phase": phase, "outcome": outcome}
        assert sample(after, PHASE, **labels) - sample(before, PHASE, **labels) == 1, phase
    assert sample(after, "pacsbridge_imports", state="completed") == 1


def test_a_refused_instance_counts_as_a_store_failure_with_its_status(
    make_client, pynetdicom_pacs, tmp_path
) -> None:  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)

    def unsupported(files: list[Path]) -> None:
        odd = dcmread(files[0])
        odd.SOPClassUID = odd.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.8.498.9.9"
        odd.save_as(files[0], enforce_file_format=True)  # a SOP class no PACS supports

    before = scrape(client)
    import_id, token, _ = _import(client, tmp_path, unsupported)

    assert progress_of(client, token, import_id)["state"] == "failed"
    with client.app.state.context.sessions() as session:
        [status] = session.scalars(
            select(ImportInstance.status).where(
                ImportInstance.import_id == import_id, ImportInstance.state == "failed"
            )
        ).all()
    label = "none" if status is None else f"0x{status:04X}"
    after = scrape(client)
    failures = "pacsbridge_store_failures_total"
    assert (
        sample(after, failures, peer="PACS", status=label)
        - sample(before, failures, peer="PACS", status=label)
        == 1
    )
    assert (
        sample(after, PHASE, phase="send", outcome="failed")
        - sample(before, PHASE, phase="send", outcome="failed")
        == 1
    )
