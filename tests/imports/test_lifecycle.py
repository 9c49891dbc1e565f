"""The import lifecycle: one transition table, and a compare-and-set move that loses cleanly.

The races run against the real app on SQLite and on PostgreSQL: SQLite's ``BEGIN IMMEDIATE``
serialises writers, PostgreSQL's READ COMMITTED does not, which is where a confirm and a cancel
sent at the same moment were once both accepted.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import drain, upload, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.imports import lifecycle
from pacsbridge.imports.lifecycle import TRANSITIONS, ImportState
from pacsbridge.imports.models import Import

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")
QUEUED = {"jobs": {"backend": "sqlite"}}  # confirm only enqueues: the race is the state change
TRIES = 20


def test_every_state_is_in_the_transition_table_and_terminal_ones_lead_nowhere():
    assert set(TRANSITIONS) == set(ImportState)
    assert TRANSITIONS[ImportState.COMPLETED] == TRANSITIONS[ImportState.CANCELLED] == frozenset()
    assert lifecycle.cancellable("processing") and not lifecycle.cancellable("completed")
    assert lifecycle.confirmable("awaiting_confirmation") and not lifecycle.confirmable("confirmed")
    assert [lifecycle.sendable(s) for s in ("absent", "partial", "present", "unknown")] == [
        True,
        True,
        False,
        False,
    ]


def test_a_move_outside_the_table_is_refused(make_client):
    ctx = make_client().app.state.context
    with ctx.sessions.begin() as session, pytest.raises(ValueError, match="not allowed"):
        lifecycle.move(session, 1, ImportState.COMPLETED, ImportState.PROCESSING)


def _imports_awaiting(client, tmp_path, count: int) -> tuple[str, list[int]]:  # noqa: ANN001
    token = launch(client)
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    body = zip_folder(tmp_path / "cd")
    ids = []
    for _ in range(count):
        import_id = upload(client, token, body)["id"]
        drain(client)
        document = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()
        assert document["state"] == "awaiting_confirmation", document
        ids.append(document["id"])
    return token, ids


def _two_moves_at_once(ctx, import_id: int) -> list[bool]:  # noqa: ANN001
    """Both read ``awaiting_confirmation`` first, then both try to leave it at the same time."""
    barrier = threading.Barrier(2)

    def attempt(target: ImportState) -> bool:
        with ctx.sessions() as session:
            seen = session.scalar(select(Import.state).where(Import.id == import_id))
        barrier.wait()
        with ctx.sessions.begin() as session:
            return lifecycle.move(session, import_id, seen, target)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(attempt, t) for t in (ImportState.CONFIRMED, ImportState.CANCELLED)]
        return [f.result(timeout=30) for f in futures]


def _race_confirm_and_cancel(client, token: str, import_id: int) -> tuple[int, int]:  # noqa: ANN001
    barrier = threading.Barrier(2)

    def post(action: str) -> int:
        barrier.wait()
        url = f"/api/v1/imports/{import_id}/{action}"
        return client.post(url, headers=bearer(token), json={}).status_code

    with ThreadPoolExecutor(2) as pool:
        confirm, cancel = pool.submit(post, "confirm"), pool.submit(post, "cancel")
        return confirm.result(timeout=60), cancel.result(timeout=60)


def _left_awaiting(ctx, import_id: int) -> int:  # noqa: ANN001
    """Audited changes that left ``awaiting_confirmation``: exactly one may exist."""
    with ctx.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.import_id == import_id))
        return sum(
            1
            for e in events
            if e.kind == "import.confirmed"
            or (e.kind == "import.cancelled" and e.details["was"] == "awaiting_confirmation")
        )


def _assert_one_winner_each_time(client, tmp_path) -> None:  # noqa: ANN001
    ctx = client.app.state.context
    token, ids = _imports_awaiting(client, tmp_path, 2 * TRIES)
    for import_id in ids[:TRIES]:
        assert sorted(_two_moves_at_once(ctx, import_id)) == [False, True]
    for import_id in ids[TRIES:]:
        confirm, cancel = _race_confirm_and_cancel(client, token, import_id)
        assert (confirm, cancel) != (409, 409)
        assert _left_awaiting(ctx, import_id) == 1
        if confirm == 202 and cancel == 200:  # cancelled after the confirm, never instead of it
            with ctx.sessions() as session:
                assert session.get(Import, import_id).state == "cancelled"


def test_confirm_and_cancel_at_once_have_one_winner_on_sqlite(
    make_client, pynetdicom_pacs, tmp_path
):  # noqa: ANN001
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **QUEUED,
        database={"url": f"sqlite:///{tmp_path / 'race.db'}"},
    )
    _assert_one_winner_each_time(client, tmp_path)


def test_confirm_and_cancel_at_once_have_one_winner_on_postgresql(
    make_client, pynetdicom_pacs, postgres_url, tmp_path
):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED, database={"url": postgres_url})
    _assert_one_winner_each_time(client, tmp_path)
