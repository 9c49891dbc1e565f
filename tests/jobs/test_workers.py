"""Worker processes, as deployed: several on Redis + PostgreSQL, and one killed with SIGKILL.

Huey delivers at most once, so these tests check what our ledger adds: no import is processed
twice by two workers, and an import whose worker died mid-phase is finished by another one.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import zip_folder
from jobs.conftest import toml_text, wait_for
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports.models import PhaseRun

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-9", birth_date="19740101", sex="M")


def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    wait_for(check, seconds, what)


def _state(client, token: str, import_id: int) -> str:  # noqa: ANN001
    return client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()["state"]


def _upload(client, token: str, folder: Path) -> int:  # noqa: ANN001
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    answer = client.put(
        f"/api/v1/imports/{import_id}/archive", content=zip_folder(folder), headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    return import_id


def _events(client, import_id: int, kind: str) -> list[dict[str, Any]]:  # noqa: ANN001
    with client.app.state.context.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.import_id == import_id, AuditEvent.kind == kind)
        return [
            {"phase": (e.details or {}).get("phase"), "worker": (e.details or {}).get("worker")}
            for e in session.scalars(query)
        ]


def test_two_workers_on_redis_and_postgresql_share_the_imports_and_never_run_a_phase_twice(
    deployment,
    postgres_url,
    redis_url,
    pynetdicom_pacs,
    tmp_path,  # noqa: ANN001
) -> None:
    client = deployment(
        {
            **pacs_settings(pynetdicom_pacs),
            "database": {"url": postgres_url},
            "jobs": {"backend": "redis", "redis_url": redis_url, "workers": 1},
        }
    )
    client.start_worker()
    client.start_worker()
    token = launch(client)
    studies = [
        SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=3) for _ in "abcd"
    ]
    ids = []
    for n, study in enumerate(studies):
        write_loose(tmp_path / f"usb{n}", [study], junk=False)
        ids.append(_upload(client, token, tmp_path / f"usb{n}"))

    for import_id in ids:
        _wait(
            lambda i=import_id: _state(client, token, i) == "awaiting_confirmation", 60, "analysis"
        )
        assert (
            client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token)).status_code
            == 202
        )
    for import_id in ids:
        _wait(
            lambda i=import_id: _state(client, token, i) in ("completed", "failed"), 90, "pipeline"
        )

    assert [_state(client, token, i) for i in ids] == ["completed"] * len(ids)
    for import_id in ids:  # each phase ran once: two workers never shared an import
        started = [e["phase"] for e in _events(client, import_id, "phase.started")]
        assert sorted(started) == sorted(set(started))
    for study in studies:
        assert len(pynetdicom_pacs.instance_uids(study.study_instance_uid)) == 3
    kinds = ("analysis.started", "phase.started")  # 8 tasks, one at a time per process
    workers = {e["worker"] for i in ids for kind in kinds for e in _events(client, i, kind)}
    assert len(workers) == 2, f"the work ran on {workers}: one worker stayed idle"


def test_a_worker_killed_mid_phase_is_taken_over(deployment, pynetdicom_pacs, tmp_path) -> None:  # noqa: ANN001
    client = deployment(
        {**pacs_settings(pynetdicom_pacs), "jobs": {"backend": "sqlite", "lease_seconds": 2}}
    )
    ctx = client.app.state.context
    first = client.start_worker()
    token = launch(client)
    study = SampleStudy(
        patient=EXTERNAL, series_count=4, instances_per_series=60, rows=128, columns=128
    )
    write_loose(tmp_path / "usb", [study], junk=False)
    import_id = _upload(client, token, tmp_path / "usb")
    _wait(lambda: _state(client, token, import_id) == "awaiting_confirmation", 60, "analysis")
    assert (
        client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token)).status_code
        == 202
    )

    def sending() -> bool:
        with ctx.sessions() as session:
            query = select(PhaseRun.state).where(
                PhaseRun.import_id == import_id, PhaseRun.phase == "send"
            )
            return session.scalar(query) == "running"

    _wait(sending, 60, "the send phase")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert _state(client, token, import_id) == "processing"

    time.sleep(2.5)  # the dead worker's lease runs out
    client.start_worker()  # its start-up reaper re-enqueues the import
    _wait(lambda: _state(client, token, import_id) in ("completed", "failed"), 120, "takeover")

    assert _state(client, token, import_id) == "completed"
    assert len(pynetdicom_pacs.instance_uids(study.study_instance_uid)) == 240
    sends = [e for e in _events(client, import_id, "phase.started") if e["phase"] == "send"]
    assert len(sends) == 2  # started by the killed worker, finished by the second


def test_toml_writer_round_trips() -> None:
    import tomllib

    values = {
        "a": 1,
        "jobs": {"backend": "redis", "n": [1, 2]},
        "x": {"y": {"z": "w"}},
        "sources": [{"name": "s1", "port": 1}, {"name": "s2", "port": 2}],
    }
    assert tomllib.loads(toml_text(values)) == values
