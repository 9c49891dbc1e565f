"""SIGKILL of the worker that is in the middle of a C-MOVE, with two workers on PostgreSQL + Redis.

The source (an in-process pynetdicom Q/R SCP, ``jobs.qr_peer``) sends slowly, one instance
every ``SEND_GAP`` seconds, and records for each C-MOVE the TCP port the request came from,
so the test knows which ``pacsbridge worker`` process is moving and kills exactly that one.
Huey delivers at most once, so the killed worker's task is gone: the retrieval's lease
(``jobs.lease_seconds``) runs out, the reaper re-enqueues it and the other worker moves the
study again. The reaper is the product's periodic ``retrievals.reap`` task, put on the queue
by the test once the lease has lapsed instead of waiting up to a minute for its schedule.

What must hold afterwards (docs/integration-fse.md): the retrieval is ``available``, the
package holds every instance the C-FIND listed exactly once, and the study's instance list
has no duplicate row.

Two deployments on one host are covered, because only one process can listen on the
Storage SCP's port (``Context.listener``): the web side (``serve``) receiving for
the workers, and two bare workers, the killed one being the one that was receiving.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pynetdicom import evt
from sqlalchemy import func, select

from conftest import FSE_KEY, bearer
from jobs.conftest import wait_for
from jobs.qr_peer import PENDING, CountingQRSCP, _storage_contexts
from pacsbridge.context import MovableClock
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import runner
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, SourceSlot

SOURCE = "ao17"
LEASE = 3.0
SEND_GAP = 0.25
INSTANCES = (2, 8)  # series x instances per series: 16 instances, about 4 s to send
AUTH = bearer(FSE_KEY)


@dataclass
class SeenMove:
    """One C-MOVE as the source saw it: where it came from, what it sent so far."""

    level: str
    requestor_port: int
    sent: list[str]


class SlowSource(CountingQRSCP):
    """Sends one instance every ``SEND_GAP`` seconds; stops when the requestor is gone.

    The first C-MOVE holds after ``HOLD_AT`` instances until ``release`` is set, so that a
    test kills its requestor in the middle of it however loaded the machine is.
    """

    HOLD_AT = 3

    def __init__(self) -> None:
        self.seen: list[SeenMove] = []
        self.release = threading.Event()
        super().__init__(ae_title="SLOWPACS")

    def _move(self, event: evt.Event) -> Iterator[Any]:
        asked = event.identifier
        seen = SeenMove(str(asked.QueryRetrieveLevel), int(event.assoc.requestor.port), [])
        with self._lock:
            self.moves[str(asked.get("StudyInstanceUID", ""))] += 1
            self.seen.append(seen)
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            yield None, None
            return
        matched = self._matching(asked)
        yield (*destination, {"contexts": _storage_contexts(matched)})
        yield len(matched)
        first = len(self.seen) == 1
        for ds in matched:
            time.sleep(SEND_GAP)
            if first and len(seen.sent) == self.HOLD_AT:
                self.release.wait(60)
            if not event.assoc.is_established:
                return  # the requestor died: a real PACS stops too
            yield PENDING, ds
            seen.sent.append(str(ds.SOPInstanceUID))


@pytest.fixture
def clock() -> MovableClock:
    """Wall-clock time for the web side: it reads leases the worker processes write."""
    return MovableClock()


@pytest.fixture
def source() -> Iterator[SlowSource]:
    peer = SlowSource()
    yield peer
    peer.stop()


def _pid_with_local_port(pids: list[int], port: int) -> int | None:
    """The process whose TCP socket is bound to ``port`` on this host (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue  # closed meanwhile
    return None


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _deploy(deployment, postgres_url: str, redis_url: str, source: SlowSource) -> Any:  # noqa: ANN001
    client = deployment(
        {
            "database": {"url": postgres_url},
            "jobs": {
                "backend": "redis",
                "redis_url": redis_url,
                "workers": 1,
                "lease_seconds": LEASE,
                "retry_delay_seconds": 1,
            },
            "sources": [
                {
                    "name": SOURCE,
                    "ae_title": source.ae_title,
                    "host": source.peer.host,
                    "port": source.peer.port,
                }
            ],
            "fse": {"quiet_period_seconds": 0.5, "move_timeout_seconds": 30},
        }
    )
    source.destinations["PACSBRIDGE"] = ("127.0.0.1", client.app.state.context.settings.dicom.port)
    return client


def _study(source: SlowSource, tmp_path: Path) -> tuple[SampleStudy, set[str]]:
    patient = SamplePatient(name="ROSSI^MARIA", patient_id=f"P{uuid.uuid4().hex[:8]}", sex="F")
    series, per_series = INSTANCES
    study = SampleStudy(
        patient=patient,
        accession_number=f"K{uuid.uuid4().hex[:10].upper()}",
        series_count=series,
        instances_per_series=per_series,
        rows=16,
        columns=16,
    )
    paths = write_loose(tmp_path / "source", [study], junk=False)
    source.load(paths)
    return study, {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def _request(client, accession: str) -> int:  # noqa: ANN001
    body = {"source": SOURCE, "accession_numbers": [accession]}
    answer = client.post("/api/v1/retrievals", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.text
    return int(answer.json()["id"])


def _document(client, retrieval_id: int) -> dict[str, Any]:  # noqa: ANN001
    return client.get(f"/api/v1/retrievals/{retrieval_id}", headers=AUTH).json()


def _reapable(ctx: Any) -> list[int]:
    """What the reaper would re-enqueue now (asked without enqueueing anything)."""
    return ledger.reap(ctx, None, Retrieval, dict.fromkeys(runner.RUNNABLE, runner.TASK))


def _all_leases_lapsed(ctx: Any) -> bool:
    """The dead worker's leases (retrieval, study, source slot) all ran out.

    A retrieval reaped while the study's lease is still live takes it for another mover's
    and waits for the next reaper run (a minute): the test re-enqueues once all lapsed.
    """
    now = ctx.clock.now()
    with ctx.sessions() as session:
        for model in (Retrieval, CachedStudy, SourceSlot):
            if session.scalar(select(func.count()).where(ledger.live(model, now))):
                return False
    return True


def _kill_mid_move(client, source: SlowSource, victim, total: int) -> int:  # noqa: ANN001
    """SIGKILL ``victim`` once some but not all instances were sent; what it had sent."""
    wait_for(lambda: len(source.seen) == 1 and len(source.seen[0].sent) >= 3, 60, "sending")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    source.release.set()  # the source finds its requestor gone and stops
    sent = len(source.seen[0].sent)
    assert 0 < sent < total  # killed in the middle of the C-MOVE
    return sent


def _take_over(client, retrieval_id: int) -> None:  # noqa: ANN001
    """Lease lapses → the reaper (the product's periodic task, enqueued now) → another worker."""
    ctx = client.app.state.context
    assert _reapable(ctx) == []  # the dead worker's lease is still live: nobody may take it
    wait_for(lambda: _reapable(ctx) == [retrieval_id], 4 * LEASE, "the lease to lapse")
    wait_for(lambda: _all_leases_lapsed(ctx), 4 * LEASE, "the study's and slot's leases")
    ctx.queue.enqueue(ledger.Task.REAP_RETRIEVALS)
    wait_for(lambda: _document(client, retrieval_id)["state"] != "retrieving", 90, "the takeover")


def _assert_each_instance_once(client, retrieval_id: int, listed: set[str]) -> None:  # noqa: ANN001
    document = _document(client, retrieval_id)
    assert document["state"] == "available", document
    assert document["expected_instances"] == document["received_instances"] == len(listed)
    [entry] = document["studies"]
    in_document = [i["sop_instance_uid"] for s in entry["series"] for i in s["instances"]]
    assert sorted(in_document) == sorted(listed)  # each listed instance once, none more
    package = client.get(f"/api/v1/retrievals/{retrieval_id}/package", headers=AUTH)
    assert package.status_code == 200, package.text
    archive = zipfile.ZipFile(io.BytesIO(package.content))
    files = [n for n in archive.namelist() if n.startswith("DICOM/")]
    assert len(files) == len(set(files)) == len(listed)
    in_package = [str(dcmread(io.BytesIO(archive.read(n))).SOPInstanceUID) for n in files]
    assert sorted(in_package) == sorted(listed)
    with client.app.state.context.sessions() as session:
        rows = session.execute(
            select(ExpectedInstance.sop_instance_uid, func.count())
            .join(CachedStudy)
            .where(CachedStudy.study_instance_uid == entry["study_instance_uid"])
            .group_by(ExpectedInstance.sop_instance_uid)
        )
        assert {sop: n for sop, n in rows} == dict.fromkeys(listed, 1)


def test_a_worker_killed_mid_c_move_is_taken_over_by_the_other_and_each_instance_kept_once(
    deployment, postgres_url, redis_url, source, tmp_path
) -> None:  # noqa: ANN001
    """The web side (as ``pacsbridge serve``) receives; two workers move; the mover is killed."""
    client = _deploy(deployment, postgres_url, redis_url, source)
    assert client.app.state.context.listener.ensure() is not None  # this process receives
    study, listed = _study(source, tmp_path)
    workers = [client.start_worker(), client.start_worker()]

    retrieval_id = _request(client, study.accession_number)
    wait_for(lambda: source.seen, 60, "the first C-MOVE")
    mover = _pid_with_local_port([w.pid for w in workers], source.seen[0].requestor_port)
    assert mover is not None, "the C-MOVE came from neither worker"
    [victim] = [w for w in workers if w.pid == mover]
    [survivor] = [w for w in workers if w.pid != mover]
    _kill_mid_move(client, source, victim, len(listed))
    _take_over(client, retrieval_id)

    assert survivor.poll() is None
    assert [m.level for m in source.seen] == ["STUDY", "STUDY"]  # the killed one, the new one
    taker = _pid_with_local_port([survivor.pid], source.seen[1].requestor_port)
    assert taker in (survivor.pid, None)  # None: its association is already closed
    assert sorted(source.seen[1].sent) == sorted(listed)
    _assert_each_instance_once(client, retrieval_id, listed)


def test_the_receiving_worker_killed_mid_c_move_is_taken_over_by_the_other(
    deployment, postgres_url, redis_url, source, tmp_path
) -> None:  # noqa: ANN001
    """No ``serve``: the first worker listens on the Storage SCP port and moves; it is killed.

    The second worker found the port taken at its start-up; it must still receive the
    study it moves once the first one is gone.
    """
    client = _deploy(deployment, postgres_url, redis_url, source)
    port = client.app.state.context.settings.dicom.port
    study, listed = _study(source, tmp_path)
    first = client.start_worker()
    wait_for(lambda: _listening(port), 30, "the first worker's Storage SCP")
    assert _pid_with_local_port([first.pid], port) == first.pid

    retrieval_id = _request(client, study.accession_number)
    wait_for(lambda: source.seen, 60, "the first C-MOVE")
    assert _pid_with_local_port([first.pid], source.seen[0].requestor_port) == first.pid
    second = client.start_worker()
    log = tmp_path / "worker-1.log"  # the deployment fixture's log of the second worker
    wait_for(lambda: b"Storage SCP not started" in log.read_bytes(), 30, "the port taken")
    _kill_mid_move(client, source, first, len(listed))
    _take_over(client, retrieval_id)

    assert second.poll() is None
    _assert_each_instance_once(client, retrieval_id, listed)
    assert [m.level for m in source.seen] == ["STUDY", "STUDY"]
    assert sorted(source.seen[1].sent) == sorted(listed)
