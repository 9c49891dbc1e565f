"""Single flight across processes: two requests for one study, two workers, one C-MOVE.

Two ``pacsbridge worker`` processes share PostgreSQL and Redis, each with one worker thread.
The source (an in-process pynetdicom Q/R SCP that counts C-MOVE requests) holds the first
C-MOVE open for longer than several leases, so the second request can only be taken by the
other process while the first is still moving: the study's lease, renewed across processes,
is all that stops a second C-MOVE.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from conftest import FSE_KEY, bearer
from jobs.conftest import wait_for
from jobs.qr_peer import CountingQRSCP
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose

SOURCE = "ao17"
LEASE = 2.0
AUTH = bearer(FSE_KEY)


@pytest.fixture
def source() -> Iterator[CountingQRSCP]:
    peer = CountingQRSCP()
    yield peer
    peer.stop()


def _state(client, retrieval_id: int) -> str:  # noqa: ANN001
    return client.get(f"/api/v1/retrievals/{retrieval_id}", headers=AUTH).json()["state"]


def _request_twice_at_once(client, accession: str) -> list[int]:  # noqa: ANN001
    body = {"source": SOURCE, "accession_numbers": [accession]}
    start, answers = threading.Barrier(2), []

    def post() -> None:
        start.wait()
        answers.append(client.post("/api/v1/retrievals", json=body, headers=AUTH))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    return sorted(a.json()["id"] for a in answers)


def test_two_workers_on_postgresql_and_redis_issue_one_c_move_for_one_study(
    deployment, postgres_url, redis_url, source, tmp_path
) -> None:  # noqa: ANN001
    patient = SamplePatient(name="ROSSI^MARIA", patient_id=f"P{uuid.uuid4().hex[:8]}", sex="F")
    study = SampleStudy(
        patient=patient, accession_number="FLIGHT1", series_count=2, instances_per_series=3
    )
    source.load(write_loose(tmp_path / "source", [study], junk=False))
    client = deployment(
        {
            "database": {"url": postgres_url},
            "jobs": {
                "backend": "redis",
                "redis_url": redis_url,
                "workers": 1,
                "lease_seconds": LEASE,
            },
            "sources": [
                {
                    "name": SOURCE,
                    "ae_title": source.ae_title,
                    "host": source.peer.host,
                    "port": source.peer.port,
                }
            ],
            "fse": {"quiet_period_seconds": 0.3, "move_timeout_seconds": 60},
        }
    )
    our_port = client.app.state.context.settings.dicom.port
    source.destinations["PACSBRIDGE"] = ("127.0.0.1", our_port)
    source.move_gate.clear()  # the first C-MOVE stays in flight until we let it go
    client.start_worker()
    client.start_worker()

    ids = _request_twice_at_once(client, study.accession_number)
    uid = study.study_instance_uid
    wait_for(lambda: source.moves[uid] >= 1, 60, "the first C-MOVE")
    # That worker's only thread is inside the C-MOVE: the other process takes the other request.
    wait_for(lambda: all(_state(client, i) == "retrieving" for i in ids), 60, "both linked")
    time.sleep(3 * LEASE)  # several leases: a lease not renewed would have let a 2nd mover in
    moves_while_in_flight = source.moves[uid]
    source.move_gate.set()
    wait_for(lambda: all(_state(client, i) != "retrieving" for i in ids), 60, "both finished")

    assert moves_while_in_flight == 1
    assert source.moves[uid] == 1
    assert [_state(client, i) for i in ids] == ["available", "available"]
