"""Two ``pacsbridge serve`` nodes on one PostgreSQL, one Redis and one data folder.

As docs/deployment.md ("Several nodes") deploys them: each node its own web port, Storage
SCP port and AE title, which is the C-MOVE destination it names (docs/pacs-setup.md). The
PACS is Orthanc, reached through a relay that can hold the C-STORE data part-way; the
source is a pynetdicom Q/R SCP that counts C-MOVEs by study and by destination AE (so by
node) and can hold its first C-MOVE part-way. Which node did what is read from the audit:
``analysis.started``, ``phase.started`` and ``retrieval.moved`` carry ``worker`` (host:pid).

Nodes started together on the fresh database migrate it at the same moment (under the
PostgreSQL advisory lock of ``db.migrate``). The lapsed leases of a killed node are picked
up by the product's periodic reapers, put on the queue by the test once the leases have run
out instead of waiting for the minute.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from sqlalchemy import func, select

from conftest import FSE_KEY, LAUNCH_BODY, RIS_KEY, bearer
from imports.helpers import zip_folder
from jobs.conftest import redis_url, wait_for  # noqa: F401 - redis_url is a fixture
from operations.cluster import Cluster, HoldingRelay, MovingSource, Node
from pacsbridge import runtime
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports.models import Import
from pacsbridge.jobs import ledger
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, SourceSlot
from pacsbridge.settings import Settings

SOURCE = "ao17"
LEASE = 2.0
FSE = bearer(FSE_KEY)
EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-2N", birth_date="19740101", sex="M")


class Deployment:
    """The cluster, its peers, and a runtime of the test's own on the shared settings."""

    def __init__(self, tmp_path: Path, postgres_url: str, redis: str, pacs: Any) -> None:
        self.source = MovingSource()
        self.relay = HoldingRelay(pacs.peer.port)
        self.pacs = pacs
        self.tmp_path = tmp_path
        self.cluster = Cluster(tmp_path, self._shared(postgres_url, redis, pacs.peer.ae_title))
        self.runtime: runtime.Runtime | None = None

    def _shared(self, postgres_url: str, redis: str, pacs_ae: str) -> dict[str, Any]:
        jobs = {"backend": "redis", "redis_url": redis, "workers": 2, "lease_seconds": LEASE}
        source = {"name": SOURCE, "ae_title": self.source.ae_title, "host": "127.0.0.1"}
        source |= {"port": self.source.peer.port, "max_concurrent_retrievals": 8}
        return {
            "database": {"url": postgres_url},
            "jobs": {**jobs, "retry_delay_seconds": 1},
            "pacs": {"ae_title": pacs_ae, "host": "127.0.0.1", "port": self.relay.port},
            "sources": [source],
            "fse": {"quiet_period_seconds": 0.3, "move_timeout_seconds": 30},
        }

    def add(self, name: str, worker: bool = True) -> Node:
        node = self.cluster.add(name, worker=worker)
        self.source.destinations[node.ae_title] = ("127.0.0.1", node.scp_port)
        return node

    @property
    def ctx(self) -> Any:
        """The test's own view of the database and queue, built once the nodes migrated it.

        Built late on purpose: the nodes, started together, migrate the fresh database at the
        same moment (``db.migrate.upgrade`` serialises them).
        """
        if self.runtime is None:
            config = next(iter(self.cluster.nodes.values())).config
            self.runtime = runtime.build(Settings.load(config), upgrade=False)
        return self.runtime.context

    def close(self) -> None:
        self.cluster.close()
        if self.runtime is not None:
            self.runtime.close()
        self.relay.close()
        self.source.stop()

    # -- imports -----------------------------------------------------------------------------

    def analysed_import(self, node: Node, study: SampleStudy) -> tuple[str, int, set[str]]:
        """Launch, upload and analyse on ``node``: (token, import id, SOP Instance UIDs)."""
        body = {**LAUNCH_BODY, "order": {"number": "ORD-2N", "accession_number": "ACC2N"}}
        answer = node.http.post("/api/v1/launch", json=body, headers=bearer(RIS_KEY))
        assert answer.status_code == 201, answer.text
        token = answer.json()["token"]
        folder = self.tmp_path / f"usb-{study.study_instance_uid[-8:]}"
        paths = write_loose(folder, [study], junk=False)
        import_id = node.http.post("/api/v1/imports", headers=bearer(token)).json()["id"]
        url = f"/api/v1/imports/{import_id}/archive"
        answer = node.http.put(url, content=zip_folder(folder), headers=bearer(token))
        assert answer.status_code == 200, answer.text
        self.wait_import(node, token, import_id, "awaiting_confirmation")
        return token, import_id, {str(dcmread(p).SOPInstanceUID) for p in paths}

    def wait_import(self, node: Node, token: str, import_id: int, state: str) -> None:
        def there() -> bool:
            found = node.http.get(f"/api/v1/imports/{import_id}", headers=bearer(token))
            assert found.json()["state"] not in {"failed", "cancelled"}, found.text
            return found.json()["state"] == state

        wait_for(there, 60, f"import {import_id} {state}")

    def workers(self, kind: str, import_id: int | None = None, **detail: str) -> list[str | None]:
        """The node of each ``kind`` audit event (in order), from its ``worker`` detail."""
        query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        if import_id is not None:
            query = query.where(AuditEvent.import_id == import_id)
        with self.ctx.sessions() as session:
            events = [e.details or {} for e in session.scalars(query)]
        chosen = [e for e in events if all(e.get(k) == v for k, v in detail.items())]
        return [self.cluster.node_of(e.get("worker")) for e in chosen]

    # -- retrievals --------------------------------------------------------------------------

    def source_study(self, series: int, per_series: int) -> tuple[SampleStudy, set[str]]:
        patient = SamplePatient(name="ROSSI^MARIA", patient_id=f"P{uuid.uuid4().hex[:8]}")
        study = SampleStudy(
            patient=patient,
            accession_number=f"K{uuid.uuid4().hex[:10].upper()}",
            series_count=series,
            instances_per_series=per_series,
            rows=16,
            columns=16,
        )
        paths = write_loose(self.tmp_path / "source" / patient.patient_id, [study], junk=False)
        self.source.load(paths)
        return study, {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}

    def request(self, node: Node, study: SampleStudy) -> int:
        body = {"source": SOURCE, "accession_numbers": [study.accession_number]}
        answer = node.http.post("/api/v1/retrievals", json=body, headers=FSE)
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])

    def retrieval(self, node: Node, retrieval_id: int) -> dict[str, Any]:
        return node.http.get(f"/api/v1/retrievals/{retrieval_id}", headers=FSE).json()

    def wait_retrievals(self, node: Node, ids: list[int]) -> list[str]:
        def done() -> bool:
            return all(self.retrieval(node, i)["state"] not in RUNNING for i in ids)

        wait_for(done, 60, f"retrievals {ids} to finish")
        return [self.retrieval(node, i)["state"] for i in ids]

    def reap_after_leases_lapse(self) -> None:
        """Once every lease of the killed node ran out, run the product's reapers now."""

        def lapsed() -> bool:
            now = self.ctx.clock.now()
            with self.ctx.sessions() as session:
                models = (Import, Retrieval, CachedStudy, SourceSlot)
                return not any(
                    session.scalar(select(func.count()).where(ledger.live(m, now))) for m in models
                )

        wait_for(lapsed, 6 * LEASE, "the killed node's leases to lapse")
        self.ctx.queue.enqueue(ledger.Task.REAP_IMPORTS)
        self.ctx.queue.enqueue(ledger.Task.REAP_RETRIEVALS)


RUNNING = {"queued", "querying", "retrieving"}


@pytest.fixture
def deployment(tmp_path, postgres_url, redis_url, orthanc_pacs) -> Iterator[Deployment]:  # noqa: ANN001, F811
    found = Deployment(tmp_path, postgres_url, redis_url, orthanc_pacs)
    yield found
    found.close()


def _confirm(node: Node, token: str, import_id: int) -> None:
    answer = node.http.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert answer.status_code == 202, answer.text


def test_an_import_uploaded_to_a_web_only_node_is_analysed_and_stored_by_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.add("a", worker=False), deployment.add("b")
    deployment.cluster.start(a, b)
    study = SampleStudy(patient=EXTERNAL, series_count=2, instances_per_series=5)

    token, import_id, sent = deployment.analysed_import(a, study)
    _confirm(a, token, import_id)
    deployment.wait_import(a, token, import_id, "completed")

    assert deployment.workers("analysis.started", import_id) == ["b"]
    assert set(deployment.workers("phase.started", import_id)) == {"b"}
    assert deployment.pacs.instance_uids(study.study_instance_uid) == sent
    assert not a.receives()  # the web-only node has no Storage SCP either


def test_retrievals_spread_over_both_nodes_and_identical_requests_share_one_c_move(
    deployment: Deployment,
) -> None:
    a, b = deployment.add("a"), deployment.add("b")
    deployment.cluster.start(a, b)
    source = deployment.source
    studies = [deployment.source_study(1, 3)[0] for _ in range(5)]
    source.move_gate.clear()  # moves stay in flight: 2 worker threads per node
    ids = [deployment.request((a, b)[n % 2], s) for n, s in enumerate(studies[:4])]
    shared = studies[4]
    twice: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: twice.append(deployment.request(n, shared)))
        for n in (a, b)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    wait_for(lambda: len(source.seen) >= 4, 60, "four C-MOVEs in flight")
    in_flight = {m.destination for m in source.seen}
    source.move_gate.set()
    states = deployment.wait_retrievals(a, ids + twice)

    assert in_flight == {"NODEA", "NODEB"}  # each node is moving while the other one is
    assert states == ["available"] * 6
    assert {s.study_instance_uid: source.moves[s.study_instance_uid] for s in studies} == {
        s.study_instance_uid: 1 for s in studies
    }
    assert len(deployment.source.destinations_of(shared.study_instance_uid)) == 1
    assert set(deployment.workers("retrieval.moved")) == {"a", "b"}


def test_a_node_killed_mid_store_and_mid_move_is_finished_by_the_other_each_instance_once(
    deployment: Deployment,
) -> None:
    a, b = deployment.add("a"), deployment.add("b")
    deployment.cluster.start(a)  # alone, so both jobs are A's; B starts before the kill
    study = SampleStudy(
        patient=EXTERNAL, series_count=2, instances_per_series=20, rows=64, columns=64
    )
    token, import_id, sent = deployment.analysed_import(a, study)
    moved, listed = deployment.source_study(2, 8)
    deployment.source.hold_first_at = 3
    deployment.relay.hold_after(120_000)  # about a third of the study's C-STORE data

    _confirm(a, token, import_id)
    retrieval_id = deployment.request(a, moved)
    on_pacs = deployment.pacs.instance_uids
    wait_for(lambda: deployment.relay.holding and on_pacs(study.study_instance_uid), 60, "store")
    wait_for(lambda: _first_move_sent(deployment) >= 3, 60, "the C-MOVE part-way")
    deployment.cluster.start(b)
    stored_at_kill = len(on_pacs(study.study_instance_uid))
    sent_at_kill = len(deployment.source.seen[0].sent)
    a.kill()
    deployment.relay.release()
    deployment.source.release.set()
    deployment.reap_after_leases_lapse()
    deployment.wait_import(b, token, import_id, "completed")
    [state] = deployment.wait_retrievals(b, [retrieval_id])

    assert 0 < stored_at_kill < len(sent) and 0 < sent_at_kill < len(listed)
    assert on_pacs(study.study_instance_uid) == sent
    assert deployment.pacs.rest("GET", f"/studies/{_orthanc_id(deployment, study)}/statistics")[
        "CountInstances"
    ] == len(sent)
    assert deployment.workers("phase.started", import_id, phase="send") == ["a", "b"]
    assert state == "available"
    assert deployment.source.destinations_of(moved.study_instance_uid) == ["NODEA", "NODEB"]
    # A's C-MOVE never answered, so only B's is audited (retrieval.moved follows the response)
    assert deployment.workers("retrieval.moved", level="STUDY") == ["b"]
    _assert_each_listed_instance_once(deployment, b, retrieval_id, listed)


def _first_move_sent(deployment: Deployment) -> int:
    seen = deployment.source.seen
    return len(seen[0].sent) if seen else 0


def _orthanc_id(deployment: Deployment, study: SampleStudy) -> str:
    body = f'{{"Level": "Study", "Query": {{"StudyInstanceUID": "{study.study_instance_uid}"}}}}'
    [found] = deployment.pacs.rest("POST", "/tools/find", body.encode())
    return str(found)


def _assert_each_listed_instance_once(
    deployment: Deployment, node: Node, retrieval_id: int, listed: set[str]
) -> None:
    document = deployment.retrieval(node, retrieval_id)
    assert document["expected_instances"] == document["received_instances"] == len(listed)
    [entry] = document["studies"]
    in_document = [i["sop_instance_uid"] for s in entry["series"] for i in s["instances"]]
    assert sorted(in_document) == sorted(listed)
    with deployment.ctx.sessions() as session:
        rows = session.execute(
            select(ExpectedInstance.sop_instance_uid, func.count())
            .join(CachedStudy)
            .where(CachedStudy.study_instance_uid == entry["study_instance_uid"])
            .group_by(ExpectedInstance.sop_instance_uid)
        )
        assert {sop: n for sop, n in rows} == dict.fromkeys(listed, 1)
    folder = deployment.cluster.folder / "shared-data" / "retrievals" / "studies"
    assert len(list(folder.rglob("*.dcm"))) == len(listed)  # one file per instance, shared
