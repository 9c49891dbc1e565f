"""Work longer than one lease keeps its lease: a slow duplicate check, a wait for a source slot.

Both use a short ``jobs.lease_seconds`` and the real wall clock, and play a second worker the
way production makes one: the reaper re-enqueues what looks dropped, and a second delivery (or
a second request for the same study) runs in another thread while the first still works.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from conftest import FSE_KEY, bearer, launch
from imports.helpers import zip_folder
from jobs.qr_peer import CountingQRSCP
from pacsbridge.audit import AuditEvent
from pacsbridge.context import Clock, Context
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports import maintenance, workspace
from pacsbridge.imports.models import ImportInstance
from pacsbridge.retrievals import tasks as retrieval_tasks
from pacsbridge.retrievals.models import CachedStudy, SourceSlot

LEASE = 1.0
SOURCE = "ao17"
EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-7", birth_date="19740101", sex="M")


@pytest.fixture
def clock() -> Clock:
    """The wall clock: leases must really run out (the suite's clock stands still)."""
    return Clock()


@pytest.fixture
def qr_peer() -> Iterator[Callable[..., CountingQRSCP]]:
    made: list[CountingQRSCP] = []

    def make(**options: Any) -> CountingQRSCP:
        made.append(CountingQRSCP(**options))
        return made[-1]

    yield make
    for peer in made:
        peer.stop()


def _wait(check: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _deliver_all(ctx: Context) -> list[threading.Thread]:
    """Every queued task, each in its own thread (another worker picking it up)."""
    huey = ctx.queue.huey
    threads = []
    while (task := huey.dequeue()) is not None:
        threads.append(threading.Thread(target=huey.execute, args=(task,), daemon=True))
        threads[-1].start()
    return threads


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=90)
        assert not thread.is_alive(), "a task never finished"


def _events(ctx: Context, kind: str, **where: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.kind == kind)
    for column, value in where.items():
        query = query.where(getattr(AuditEvent, column) == value)
    with ctx.sessions() as session:
        return list(session.scalars(query))


def test_an_analysis_slower_than_its_lease_is_not_started_twice(
    make_client, qr_peer, tmp_path: Path
) -> None:  # noqa: ANN001
    """The duplicate check outlasts the lease; the reaper runs; one analysis, files intact."""
    pacs = qr_peer(find_delay=3.5 * LEASE)
    client = make_client(
        jobs={"backend": "sqlite", "lease_seconds": LEASE},
        pacs={"ae_title": pacs.ae_title, "host": pacs.peer.host, "port": pacs.peer.port},
    )
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=EXTERNAL, series_count=2, instances_per_series=3)
    write_loose(tmp_path / "usb", [study], junk=False)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    answer = client.put(
        f"/api/v1/imports/{import_id}/archive",
        content=zip_folder(tmp_path / "usb"),
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text

    first = _deliver_all(ctx)
    _wait(lambda: pacs.finds["STUDY"] >= 1, 30, "the duplicate check")
    time.sleep(1.5 * LEASE)  # the PACS still thinks; a lease not renewed has run out
    maintenance.reap(ctx)  # the periodic reaper
    second = _deliver_all(ctx)
    _join(first + second)

    assert len(_events(ctx, "analysis.started", import_id=import_id)) == 1
    document = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()
    assert document["state"] == "awaiting_confirmation"
    files = workspace.files_dir(ctx.data_dir, import_id)
    with ctx.sessions() as session:
        paths = list(session.scalars(select(ImportInstance.path).filter_by(import_id=import_id)))
    assert len(paths) == 6
    assert all((files / path).is_file() for path in paths)


def _gateway(make_client, address: tuple[str, int], source: CountingQRSCP):  # noqa: ANN001, ANN202
    host, port = address
    client = make_client(
        jobs={"backend": "sqlite", "lease_seconds": LEASE},
        dicom={"ae_title": "PACSBRIDGE", "host": host, "port": port, "dimse_timeout": 20},
        sources=[
            {
                "name": SOURCE,
                "ae_title": source.ae_title,
                "host": source.peer.host,
                "port": source.peer.port,
                "max_concurrent_retrievals": 1,
            }
        ],
        fse={"quiet_period_seconds": 0.3, "move_timeout_seconds": 30},
    )
    client.app.state.context.listener.ensure()  # our Storage SCP listens
    retrieval_tasks.on_start(client.app.state.context)
    return client


def _request(client, accession: str) -> int:  # noqa: ANN001
    body = {"source": SOURCE, "accession_numbers": [accession]}
    answer = client.post("/api/v1/retrievals", json=body, headers=bearer(FSE_KEY))
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _occupy_only_slot(ctx: Context, seconds: float) -> None:
    """Another mover (of another study) holds the source's one slot."""
    with ctx.sessions.begin() as session:
        session.add(
            SourceSlot(
                source=SOURCE, slot=0, lease_until=ctx.clock.now() + timedelta(seconds=seconds)
            )
        )


def _free_slot(ctx: Context) -> None:
    with ctx.sessions.begin() as session:
        session.execute(update(SourceSlot).values(lease_until=None))


def _study_leased(ctx: Context) -> bool:
    query = select(func.count()).where(CachedStudy.lease_until.is_not(None))
    with ctx.sessions() as session:
        return bool(session.scalar(query))


def test_a_retrieval_waiting_for_a_source_slot_keeps_its_leases(
    make_client, our_scp_address, qr_peer, tmp_path: Path
) -> None:  # noqa: ANN001
    """Waiting longer than a lease for the source's one slot: the reaper finds nothing to
    re-enqueue, a second request for the same study joins the first, one C-MOVE is issued."""
    source = qr_peer(destinations={"PACSBRIDGE": our_scp_address})
    patient = SamplePatient(name="ROSSI^MARIA", patient_id=f"P{uuid.uuid4().hex[:8]}", sex="F")
    study = SampleStudy(
        patient=patient, accession_number="SLOT1", series_count=1, instances_per_series=2
    )
    source.load(write_loose(tmp_path / "source", [study], junk=False))
    client = _gateway(make_client, our_scp_address, source)
    ctx = client.app.state.context
    _occupy_only_slot(ctx, seconds=60)

    first_id = _request(client, study.accession_number)
    first = _deliver_all(ctx)
    _wait(lambda: _study_leased(ctx), 30, "the first mover to take the study")
    time.sleep(2.5 * LEASE)  # still waiting for the slot, longer than one lease
    reaped = retrieval_tasks.reap(ctx)
    second_id = _request(client, study.accession_number)
    second = _deliver_all(ctx)
    time.sleep(1.0)  # the second delivery has reached the study (joined, or waiting too)
    _free_slot(ctx)
    _join(first + second)

    assert source.moves[study.study_instance_uid] == 1
    assert reaped == []
    states = [
        client.get(f"/api/v1/retrievals/{i}", headers=bearer(FSE_KEY)).json()["state"]
        for i in (first_id, second_id)
    ]
    assert states == ["available", "available"]
