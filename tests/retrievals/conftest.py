"""The FSE gateway against real PACS: a runtime whose Storage SCP listens at ``our_scp_address``.

Jobs run on the embedded SQLite queue and the test drains it as a worker would (delayed retries
go to Huey's schedule, read when the test says time has passed), so leases, retries and the
shared C-MOVE behave as in production. Every test uses fresh accession numbers and patients:
the shared PACS of a worker keep the studies of earlier tests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from conftest import FSE_KEY, bearer
from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.retrievals import tasks

SOURCE = "ao17"
AUTH = bearer(FSE_KEY)


def fresh_accession() -> str:
    """Unique on the shared PACS (at most 16 characters, as the API demands)."""
    return f"A{uuid.uuid4().hex[:12].upper()}"


def fresh_patient() -> SamplePatient:
    return SamplePatient(name="ROSSI^MARIA", patient_id=f"P{uuid.uuid4().hex[:10]}", sex="F")


@dataclass
class Gateway:
    """pacsbridge with one source, driven through its API; the test plays the worker."""

    client: TestClient
    tmp_path: Path

    @property
    def ctx(self) -> Context:
        return self.client.app.state.context

    def post(self, accession_numbers: list[str], **extra: Any) -> Response:
        body = {"source": SOURCE, "accession_numbers": accession_numbers, **extra}
        return self.client.post("/api/v1/retrievals", json=body, headers=AUTH)

    def request(self, accession_numbers: list[str], **extra: Any) -> int:
        answer = self.post(accession_numbers, **extra)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def run(self) -> int:
        """Every queued task now, as a worker would."""
        huey = self.ctx.queue.huey
        count = 0
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
            count += 1
        return count

    def run_in_parallel(self) -> int:
        """The queued tasks in parallel threads released together (two workers, same moment)."""
        huey = self.ctx.queue.huey
        queued = []
        while (task := huey.dequeue()) is not None:
            queued.append(task)
        start = threading.Barrier(len(queued))
        threads = [
            threading.Thread(target=lambda t=t: (start.wait(), huey.execute(t))) for t in queued
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return len(queued)

    def run_scheduled(self) -> int:
        """The delayed retries, as if their back-off had elapsed."""
        huey = self.ctx.queue.huey
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)  # Huey: naive UTC
        due = huey.read_schedule(later)
        for task in due:
            huey.execute(task, timestamp=later)
        return len(due)

    def document(self, retrieval_id: int) -> dict[str, Any]:
        answer = self.client.get(f"/api/v1/retrievals/{retrieval_id}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def events(self, kind: str, retrieval_id: int | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.kind == kind)
        if retrieval_id is not None:
            query = query.where(AuditEvent.retrieval_id == retrieval_id)
        with self.ctx.sessions() as session:
            return list(session.scalars(query.order_by(AuditEvent.id)))

    def moves(self, study_uid: str) -> list[AuditEvent]:
        """The C-MOVEs we issued for a study (``retrieval.moved`` audit events)."""
        return [
            e
            for e in self.events("retrieval.moved")
            if e.details["study_instance_uid"] == study_uid
        ]


def source_settings(peer: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": SOURCE,
        "ae_title": peer.ae_title,
        "host": peer.host,
        "port": peer.port,
        **extra,
    }


@pytest.fixture
def make_gateway(
    make_client: Callable[..., TestClient], our_scp_address: tuple[str, int], tmp_path: Path
) -> Callable[..., Gateway]:
    """``make(peer, source={...}, **settings overrides)``: a gateway retrieving from ``peer``."""

    def make(peer: Any, source: dict[str, Any] | None = None, **overrides: Any) -> Gateway:
        host, port = our_scp_address
        fse = {"quiet_period_seconds": 0.3, "move_timeout_seconds": 30, **overrides.pop("fse", {})}
        client = make_client(
            jobs={"backend": "sqlite", "retry_delay_seconds": 1},
            dicom={
                "ae_title": "PACSBRIDGE",
                "host": host,
                "port": port,
                "acse_timeout": 5,
                "dimse_timeout": 20,
                "connection_timeout": 2,
                **overrides.pop("dicom", {}),
            },
            sources=[source_settings(peer, **(source or {}))],
            fse=fse,
            **overrides,
        )
        gateway = Gateway(client, tmp_path)
        gateway.ctx.listener.ensure()  # our Storage SCP listens, as in serve/worker
        tasks.on_start(gateway.ctx)
        return gateway

    return make


@pytest.fixture
def load_study(tmp_path: Path) -> Callable[..., tuple[SampleStudy, list[Path]]]:
    """``load(pacs, **SampleStudy fields)``: a fresh study written to disk and put on the PACS."""
    count = 0

    def load(pacs: Any, **fields: Any) -> tuple[SampleStudy, list[Path]]:
        nonlocal count
        count += 1
        fields.setdefault("patient", fresh_patient())
        fields.setdefault("accession_number", fresh_accession())
        study = SampleStudy(**fields)
        paths = write_loose(tmp_path / f"source-{count}", [study], junk=False)
        pacs.load(paths)
        return study, paths

    return load
