"""The job ledger that makes at-most-once delivery durable: held leases, the reaper, back-off.

Every lease behaviour runs on SQLite and on PostgreSQL, with the wall clock (a lease must
really run out) and short leases.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from pacsbridge import runtime
from pacsbridge.context import Context
from pacsbridge.imports.models import Import, Launch
from pacsbridge.jobs import ledger
from pacsbridge.settings import JobSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEASE = 1.2


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request, make_settings) -> Context:  # noqa: ANN001
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("postgres_url")}
    settings = make_settings(database=database, jobs={"lease_seconds": LEASE})
    return runtime.build(settings).context


def _import(ctx: Context, state: str = "created") -> int:
    with ctx.sessions.begin() as session:
        launch = Launch(
            token_hash=f"{time.monotonic_ns():064d}",
            created_at=NOW,
            expires_at=NOW,
            patient_id="P",
            family_name="F",
            birth_date=date(1970, 1, 1),
            sex="M",
            order_number="O",
        )
        session.add(launch)
        session.flush()
        row = Import(
            launch_id=launch.id,
            patient_id="P",
            order_number="O",
            created_at=NOW,
            updated_at=NOW,
            state=state,
        )
        session.add(row)
        session.flush()
        return row.id


def _lease_until(ctx: Context, import_id: int) -> datetime | None:
    with ctx.sessions() as session:
        return session.get_one(Import, import_id).lease_until


def test_a_held_lease_refuses_a_second_holder_and_is_free_after_the_block(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    with (
        ledger.held(ctx, Import, import_id) as first,
        ledger.held(ctx, Import, import_id) as second,
    ):
        assert (first.acquired, second.acquired) == (True, False)
    assert _lease_until(ctx, import_id) is None
    with ledger.held(ctx, Import, import_id) as third:
        assert third.acquired


def test_the_heartbeat_keeps_a_lease_alive_past_its_length(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    with ledger.held(ctx, Import, import_id) as lease:
        time.sleep(3 * LEASE)  # work three times longer than one lease
        assert not ledger.take(ctx, Import, import_id).acquired
        assert _lease_until(ctx, import_id) > ctx.clock.now()
        assert not lease.lost


def test_a_lease_nobody_renews_runs_out(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    assert ledger.take(ctx, Import, import_id).acquired  # a worker killed before its first beat
    assert not ledger.take(ctx, Import, import_id).acquired
    time.sleep(1.5 * LEASE)
    assert ledger.take(ctx, Import, import_id).acquired


def test_an_overtaken_holder_learns_it_and_leaves_the_new_lease_alone(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    with ledger.held(ctx, Import, import_id) as stalled:
        with ctx.sessions.begin() as session:  # as if this process had stalled past its lease
            session.execute(update(Import).values(lease_until=NOW))
        newcomer = ledger.take(ctx, Import, import_id)
        assert newcomer.acquired
        time.sleep(LEASE)  # a heartbeat or two of the stalled holder
        assert stalled.lost
    assert _lease_until(ctx, import_id) == newcomer.until  # its exit did not release it


def test_of_many_simultaneous_takers_exactly_one_wins(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    barrier = threading.Barrier(8)
    won: list[bool] = []

    def race() -> None:
        barrier.wait()
        won.append(ledger.take(ctx, Import, import_id, seconds=60).acquired)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(won) == [False] * 7 + [True]


def test_the_reaper_re_enqueues_only_free_runnable_rows_past_their_back_off(ctx) -> None:  # noqa: ANN001
    free = _import(ctx, "analysing")
    held = _import(ctx, "processing")
    backing_off = _import(ctx, "processing")
    _finished = _import(ctx, "completed")
    with ctx.sessions.begin() as session:
        session.get_one(Import, backing_off).retry_at = ctx.clock.now() + timedelta(hours=1)
    queued: list[tuple[str, int]] = []

    class Queue:
        def enqueue(self, name: str, *args: int, delay: float | None = None) -> None:
            queued.append((name, *args))

    tasks = {"analysing": ledger.Task.ANALYSE, "processing": ledger.Task.RUN_PIPELINE}
    with ledger.held(ctx, Import, held):
        assert ledger.reap(ctx, Queue(), Import, tasks) == [free]
    assert queued == [("imports.analyse", free)]


@pytest.mark.parametrize(("used", "expected"), [(1, 30), (2, 60), (3, 120), (6, 600), (50, 600)])
def test_retry_delay_backs_off_to_a_ceiling(used, expected):  # noqa: ANN001
    settings = JobSettings(retry_delay_seconds=30, max_retry_delay_seconds=600)
    assert ledger.retry_delay(settings, used) == expected
    assert ledger.retry_at(settings, used, NOW) == (expected, NOW + timedelta(seconds=expected))


def test_task_names_are_the_registered_ones(make_settings) -> None:  # noqa: ANN001
    queue = runtime.build(make_settings(jobs={"backend": "sqlite"})).context.queue
    assert {str(task) for task in ledger.Task} == queue.names


def test_free_and_live_agree_with_a_held_lease(ctx) -> None:  # noqa: ANN001
    import_id = _import(ctx)
    with ledger.held(ctx, Import, import_id):
        now = ctx.clock.now()
        with ctx.sessions() as session:
            row = session.get_one(Import, import_id)
            live = session.scalars(select(Import.id).where(ledger.live(Import, now))).all()
            free = session.scalars(select(Import.id).where(ledger.free(Import, now))).all()
        assert (live, free, ledger.is_free(row, now)) == ([import_id], [], False)
    with ctx.sessions() as session:
        assert ledger.is_free(session.get_one(Import, import_id), ctx.clock.now())


def test_a_change_guarded_by_free_loses_while_the_lease_is_held_and_wins_after(ctx) -> None:  # noqa: ANN001
    """How the other writers of a leased row (a failing request abandoning a study nobody
    moves, the expiry job) check the lease: ``free`` in the WHERE of their own UPDATE, so the
    check and the change are one statement and a holder arriving in between wins."""
    import_id = _import(ctx)

    def cancel_if_free() -> bool:
        guarded = (
            update(Import)
            .where(Import.id == import_id, ledger.free(Import, ctx.clock.now()))
            .values(state="cancelled")
        )
        with ctx.sessions.begin() as session:
            return session.execute(guarded).rowcount == 1

    with ledger.held(ctx, Import, import_id) as lease:
        assert lease.acquired
        assert not cancel_if_free()
    assert cancel_if_free()
