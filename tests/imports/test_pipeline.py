"""The processing pipeline end to end against real PACS: verify → reconcile → send.

Jobs run on the embedded SQLite queue and the test drains it as a worker would, so back-offs,
retries and the reaper behave as in production while the test decides when time passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless
from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import drain, phase_states, progress_of, state_of, upload, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose
from pacsbridge.dicomnet.find import find_study
from pacsbridge.dicomnet.peers import LocalAE
from pacsbridge.imports import workspace
from pacsbridge.imports.maintenance import reap

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-77", birth_date="19740101", sex="M")
LOCAL = LocalAE(ae_title="CHECKER", connection_timeout=3, acse_timeout=5)
QUEUED = {"jobs": {"backend": "sqlite"}}


def _kinds(client, import_id: int) -> list[str]:  # noqa: ANN001
    with client.app.state.context.sessions() as session:
        query = select(AuditEvent.kind).where(AuditEvent.import_id == import_id)
        return list(session.scalars(query))


def _analysed(client, token: str, folder: Path) -> int:  # noqa: ANN001
    document = upload(client, token, zip_folder(folder))
    drain(client)
    assert state_of(client, token, document["id"]) == "awaiting_confirmation"
    return document["id"]


def _confirm(client, token: str, import_id: int) -> None:  # noqa: ANN001
    answer = client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert answer.status_code == 202, answer.text
    drain(client)


def test_import_completes_on_every_pacs(make_client, pacs, tmp_path) -> None:  # noqa: ANN001
    client = make_client(**pacs_settings(pacs), **QUEUED)
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=2, instances_per_series=3)
    write_cd(tmp_path / "cd", [study])
    import_id = _analysed(client, token, tmp_path / "cd")

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    assert progress["state"] == "completed", progress
    assert phase_states(progress) == {
        "verify": "completed",
        "reconcile": "completed",
        "send": "completed",
        "merge": "skipped",
        "notify": "skipped",
    }
    sent = {str(dcmread(p).SOPInstanceUID) for p in (tmp_path / "cd").rglob("IM*")}
    assert pacs.instance_uids(study.study_instance_uid) == sent
    on_pacs = find_study(LOCAL, pacs.peer, study.study_instance_uid)
    assert on_pacs is not None and on_pacs.patient_id == "IOTELU1234"  # the RIS identity
    ctx = client.app.state.context
    assert not workspace.files_dir(ctx.data_dir, import_id).exists()  # deleted after confirmation
    kinds = _kinds(client, import_id)
    assert kinds.index("import.confirmed") < kinds.index("import.completed")
    assert "files.deleted" in kinds


def test_files_as_received_when_reconciliation_is_off(make_client, pacs, tmp_path):  # noqa: ANN001
    client = make_client(**pacs_settings(pacs), **QUEUED, imports={"reconcile": False})
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study])
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)

    assert state_of(client, token, import_id) == "completed"
    on_pacs = find_study(LOCAL, pacs.peer, study.study_instance_uid)
    assert on_pacs is not None and on_pacs.patient_id == "EXT-77"


def test_pacs_down_then_up_retries_and_completes(make_client, pacs_factory, relay, tmp_path):  # noqa: ANN001
    first = pacs_factory("dcmqrscp")
    relay.up(first.peer.port)
    pacs = {"ae_title": first.peer.ae_title, "host": relay.host, "port": relay.port}
    client = make_client(pacs=pacs, **QUEUED)
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=3)
    write_loose(tmp_path / "usb", [study])
    import_id = _analysed(client, token, tmp_path / "usb")
    relay.down()
    first.stop()

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    send = next(p for p in progress["phases"] if p["phase"] == "send")
    assert progress["state"] == "processing"
    assert send["state"] == "retrying"
    assert send["attempts_left"] == ctx.settings.jobs.attempts - 1
    assert "tentativi rimasti" in send["message"] and "non raggiungibile" in send["message"]
    assert reap(ctx) == []  # waiting for its back-off, not picked up early

    second = pacs_factory("dcmqrscp")
    relay.up(second.peer.port)  # the PACS is back at the address we know
    ctx.clock.advance(hours=1)
    assert reap(ctx) == [import_id]
    drain(client)

    assert state_of(client, token, import_id) == "completed"
    assert len(second.instance_uids(study.study_instance_uid)) == 3
    assert "phase.retry" in _kinds(client, import_id)


def test_refused_compressed_syntax_is_sent_decompressed(make_client, pacs_factory, tmp_path):  # noqa: ANN001
    strict = pacs_factory("dcmqrscp", accept_compressed=False)
    client = make_client(**pacs_settings(strict), **QUEUED)
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    files = write_loose(tmp_path / "usb", [study], junk=False)
    for path in files:
        ds = dcmread(path)
        ds.compress(RLELossless, generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)

    assert state_of(client, token, import_id) == "completed"
    assert _kinds(client, import_id).count("store.transcoded") == 2
    assert len(strict.instance_uids(study.study_instance_uid)) == 2


def test_verification_failure_stops_before_the_pacs(make_client, pynetdicom_pacs, tmp_path):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study], junk=False)
    import_id = _analysed(client, token, tmp_path / "usb")
    victim = next(workspace.files_dir(ctx.data_dir, import_id).rglob("IMG00001.dcm"))
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated after the analysis

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    assert progress["state"] == "failed"
    assert phase_states(progress)["verify"] == "failed"
    assert phase_states(progress)["send"] == "pending"
    assert "IMG00001.dcm" in progress["error"]["detail"]
    assert pynetdicom_pacs.instance_uids(study.study_instance_uid) == set()
    assert victim.exists()  # nothing received is deleted on failure


def test_reaper_re_enqueues_a_confirmed_pipeline_whose_task_was_lost(
    make_client, pynetdicom_pacs, tmp_path
):  # noqa: ANN001
    """Huey delivers at most once: a killed worker's task is gone; the ledger brings it back."""
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study])
    import_id = _analysed(client, token, tmp_path / "usb")
    answer = client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert answer.status_code == 202
    assert ctx.queue.huey.dequeue() is not None  # the task is lost, as with kill -9

    assert reap(ctx) == [import_id]
    drain(client)

    assert state_of(client, token, import_id) == "completed"
    assert len(pynetdicom_pacs.instance_uids(study.study_instance_uid)) == 2


@pytest.mark.parametrize("reconcile", [True, False], ids=["reconciled", "as-received"])
def test_hl7_phases_with_a_real_listener_with_and_without_reconciliation(
    make_client, pynetdicom_pacs, mllp_listener, tmp_path, reconcile
):  # noqa: ANN001, E501
    pacs_hl7, ris = mllp_listener(), mllp_listener()
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **QUEUED,
        imports={"reconcile": reconcile},
        merge={"enabled": True, "port": pacs_hl7.port},
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1)
    write_loose(tmp_path / "usb", [study])
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    assert progress["state"] == "completed", progress
    assert phase_states(progress)["merge"] == "completed"
    assert phase_states(progress)["notify"] == "completed"
    assert [m.message_type.split("^")[:2] for m in pacs_hl7.received] == [["ADT", "A40"]]
    assert [m.message_type for m in ris.received][0].startswith("OMI^O23")
    on_pacs = find_study(LOCAL, pynetdicom_pacs.peer, study.study_instance_uid)
    assert on_pacs is not None
    assert on_pacs.patient_id == ("IOTELU1234" if reconcile else "EXT-77")


def test_a_refused_instance_is_named_and_the_others_stored(make_client, pynetdicom_pacs, tmp_path):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=3)
    files = write_loose(tmp_path / "usb", [study], junk=False)
    odd = dcmread(files[0])
    odd.SOPClassUID = odd.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.8.498.9.9"
    odd.save_as(files[0], enforce_file_format=True)  # a SOP class no PACS supports
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    assert progress["state"] == "failed"
    assert phase_states(progress)["send"] == "failed"
    assert "IMG00001.dcm" in progress["error"]["detail"]
    assert "not accepted by the PACS" in progress["error"]["detail"]
    held = pynetdicom_pacs.instance_uids(study.study_instance_uid)
    assert held == {str(dcmread(p).SOPInstanceUID) for p in files[1:]}


def test_hl7_peer_down_then_up_delivers_once(make_client, pynetdicom_pacs, mllp_listener, tmp_path):  # noqa: ANN001
    ris = mllp_listener(start=False)
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **QUEUED,
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=EXTERNAL, series_count=1)])
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)
    assert phase_states(progress_of(client, token, import_id))["notify"] == "retrying"
    assert phase_states(progress_of(client, token, import_id))["send"] == "completed"

    ris.start()
    ctx.clock.advance(hours=1)
    assert reap(ctx) == [import_id]
    drain(client)

    assert state_of(client, token, import_id) == "completed"
    assert len(ris.received) == 1
    sends = [k for k in _kinds(client, import_id) if k == "phase.started"]
    assert len(sends) == 6  # five phases, notify twice: nothing before it ran again


def test_hl7_negative_acknowledgement_fails_with_its_text(
    make_client, pynetdicom_pacs, mllp_listener, tmp_path
):  # noqa: ANN001, E501
    from peers.mllp import Reply

    pacs_hl7 = mllp_listener()
    pacs_hl7.script(Reply.error("Patient ID sconosciuto"))
    client = make_client(
        **pacs_settings(pynetdicom_pacs), **QUEUED, merge={"enabled": True, "port": pacs_hl7.port}
    )
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=EXTERNAL, series_count=1)])
    import_id = _analysed(client, token, tmp_path / "usb")

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    assert progress["state"] == "failed"
    assert phase_states(progress)["merge"] == "failed"
    assert "Patient ID sconosciuto" in json.dumps(progress["error"])
    assert len(pacs_hl7.received) == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 80 MiB tmpfs: a real file system that fills up (needs root, as CI and scripts/test)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", str(mount)], capture_output=True
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (run as root): {done.stderr!r}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_during_the_pipeline_is_clear_and_recoverable(
    make_client,
    pynetdicom_pacs,
    small_disk,
    tmp_path,  # noqa: ANN001
) -> None:
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **QUEUED,
        storage={"data_dir": str(small_disk)},
        database={"url": f"sqlite:///{tmp_path / 'pacsbridge.db'}"},
    )
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(
        patient=EXTERNAL, series_count=1, instances_per_series=4, rows=256, columns=256
    )
    write_loose(tmp_path / "usb", [study], junk=False)
    import_id = _analysed(client, token, tmp_path / "usb")
    originals = {
        p: p.read_bytes() for p in workspace.files_dir(ctx.data_dir, import_id).rglob("*.dcm")
    }
    filler = small_disk / "filler"
    with filler.open("wb") as handle:  # leave ~200 KB: the jobs database still fits, the copies not
        handle.write(b"\0" * (shutil.disk_usage(small_disk).free - 200 * 1024))

    _confirm(client, token, import_id)

    progress = progress_of(client, token, import_id)
    reconcile = next(p for p in progress["phases"] if p["phase"] == "reconcile")
    assert progress["state"] == "processing"
    assert reconcile["state"] == "retrying"
    assert "Spazio su disco esaurito" in reconcile["message"]
    assert {p: p.read_bytes() for p in originals} == originals  # nothing received is damaged

    filler.unlink()
    ctx.clock.advance(hours=1)
    assert reap(ctx) == [import_id]
    drain(client)

    assert state_of(client, token, import_id) == "completed"
    assert len(pynetdicom_pacs.instance_uids(study.study_instance_uid)) == 4
