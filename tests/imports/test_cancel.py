"""Cancel wins and leaves nothing behind: during unpacking, during upload, and the sweep.

Each attack once left a patient's files on disk for good, or undid the cancel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from pathlib import Path

from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import drain, upload, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.errors import ConflictError
from pacsbridge.imports import confirmation, maintenance, workspace
from pacsbridge.imports import upload as uploads
from pacsbridge.imports.models import Import, Launch

PATIENT = SamplePatient(name="TEST^TEST", patient_id="EXT5", birth_date="19740101", sex="M")
QUEUED = {"jobs": {"backend": "sqlite"}}


def _events(ctx, import_id: int | None = None) -> list[AuditEvent]:  # noqa: ANN001
    with ctx.sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if import_id is not None:
            query = query.where(AuditEvent.import_id == import_id)
        return list(session.scalars(query))


def _wait_gone(path: Path, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def _big_media(folder: Path) -> bytes:
    """About 300 instances of 512 KB: long enough to unpack that a cancel lands during it."""
    study = SampleStudy(
        patient=PATIENT, series_count=3, instances_per_series=100, rows=512, columns=512
    )
    write_loose(folder, [study], junk=False)
    return zip_folder(folder)


def test_cancel_during_unpacking_stops_it_and_leaves_no_file(
    make_client, pynetdicom_pacs, tmp_path
):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED)
    ctx = client.app.state.context
    token = launch(client)
    import_id = upload(client, token, _big_media(tmp_path / "usb"))["id"]
    files = workspace.files_dir(ctx.data_dir, import_id)
    worker = threading.Thread(target=drain, args=(client,))
    worker.start()
    while not (files.exists() and len(list(files.rglob("*.dcm"))) >= 10):
        time.sleep(0.002)
    written_before_cancel = len(list(files.rglob("*.dcm")))

    answer = client.post(f"/api/v1/imports/{import_id}/cancel", headers=bearer(token))
    worker.join(timeout=60)

    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert written_before_cancel < 300  # the cancel really came while files were being written
    assert _wait_gone(workspace.folder(ctx.data_dir, import_id))
    kinds = [e.kind for e in _events(ctx, import_id)]
    assert "analysis.completed" not in kinds
    assert kinds.count("files.deleted") >= 1
    assert kinds.index("files.deleted") > kinds.index("import.cancelled")
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        assert (row.state, row.files_deleted) == ("cancelled", True)


def test_a_part_after_a_cancel_is_409_and_the_import_stays_cancelled(make_client, tmp_path):  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=PATIENT, series_count=1)], junk=False)
    body = zip_folder(tmp_path / "usb")
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    url, half = f"/api/v1/imports/{import_id}/archive", len(body) // 2

    def part(start: int, end: int) -> int:
        headers = {**bearer(token), "Content-Range": f"bytes {start}-{end - 1}/{len(body)}"}
        return client.put(url, content=body[start:end], headers=headers).status_code

    assert part(0, half) == 200
    assert (
        client.post(f"/api/v1/imports/{import_id}/cancel", headers=bearer(token)).status_code == 200
    )
    assert part(half, len(body)) == 409
    assert client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()["state"] == (
        "cancelled"
    )
    assert not workspace.folder(ctx.data_dir, import_id).exists()


def test_a_cancel_while_the_last_part_arrives_wins_over_it(make_client, tmp_path):  # noqa: ANN001
    """The last part once moved a cancelled import back to "analysing", where it stuck."""
    client = make_client()
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=PATIENT, series_count=1)], junk=False)
    body = zip_folder(tmp_path / "usb")
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        the_launch = session.get(Launch, row.launch_id)

    async def arriving():  # noqa: ANN202 - the body of the request, cancelled half-way
        yield body[: len(body) // 2]
        await asyncio.to_thread(confirmation.cancel, ctx, import_id, the_launch)
        yield body[len(body) // 2 :]

    part = uploads.Part(0, len(body))
    try:
        _run_on_own_thread(uploads.receive(ctx, import_id, the_launch, part, arriving()))
        refused = False
    except ConflictError:
        refused = True

    assert refused
    with ctx.sessions() as session:
        assert session.get(Import, import_id).state == "cancelled"
    assert not workspace.folder(ctx.data_dir, import_id).exists()
    kinds = [e.kind for e in _events(ctx, import_id)]
    assert "upload.completed" not in kinds and "files.deleted" in kinds


def test_the_sweep_removes_folders_no_live_import_owns_and_audits_them(make_client, tmp_path):  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=PATIENT, series_count=1)], junk=False)
    live = upload(client, token, zip_folder(tmp_path / "usb"))["id"]
    cancelled = upload(client, token, zip_folder(tmp_path / "usb"))["id"]
    client.post(f"/api/v1/imports/{cancelled}/cancel", headers=bearer(token))
    leftover = workspace.files_dir(ctx.data_dir, cancelled) / "IMG.dcm"  # a late writer's file
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"patient data")
    stranger = workspace.folder(ctx.data_dir, 9999)
    stranger.mkdir(parents=True)

    removed = maintenance.sweep(ctx)

    assert sorted(removed) == sorted([str(cancelled), "9999"])
    assert workspace.folder(ctx.data_dir, live).exists()
    assert not workspace.folder(ctx.data_dir, cancelled).exists() and not stranger.exists()
    swept = [e for e in _events(ctx) if e.kind == "files.swept"]
    assert [e.details["folders"] for e in swept] == [["9999"]]
    deleted = [e for e in _events(ctx, cancelled) if e.kind == "files.deleted"]
    assert deleted[-1].details["reason"] == "sweep"


def _run_on_own_thread(coroutine):  # noqa: ANN001, ANN202
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running on the main thread for the rest of the session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
