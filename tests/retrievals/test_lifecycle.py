"""Retrieval and cached-study lifecycles: the tables, and compare-and-set moves that lose cleanly.

The races run on a real runtime's database, SQLite and PostgreSQL (``ALSO_ON_POSTGRESQL``):
SQLite's ``BEGIN IMMEDIATE`` serialises writers, PostgreSQL's READ COMMITTED does not, so only
the ``WHERE state = :from`` of the update keeps two writers from both winning there.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy import func, select

from pacsbridge import runtime
from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import lifecycle, settle
from pacsbridge.retrievals.lifecycle import (
    STUDY_TRANSITIONS,
    TRANSITIONS,
    RetrievalState,
    StudyState,
)
from pacsbridge.retrievals.models import CachedStudy, Retrieval, RetrievalStudy

R, S = RetrievalState, StudyState
TRIES = 20


@pytest.fixture
def ctx(make_settings, clock) -> Iterator[Context]:  # noqa: ANN001
    """A runtime's context without its app: no Storage SCP, no worker, only the database."""
    rt = runtime.build(make_settings(), clock=clock)
    yield rt.context
    rt.close()


def test_every_state_is_in_the_tables_and_only_expiry_leaves_a_served_answer():
    assert set(TRANSITIONS) == set(RetrievalState)
    assert set(STUDY_TRANSITIONS) == set(StudyState)
    assert all(TRANSITIONS[s] <= {R.EXPIRED} for s in lifecycle.FINAL)
    assert {R.QUEUED, R.QUERYING, R.RETRIEVING} == lifecycle.RUNNING
    assert [lifecycle.servable(s) for s in (R.AVAILABLE, R.PARTIAL, R.FAILED)] == [
        True,
        True,
        False,
    ]
    assert STUDY_TRANSITIONS[S.FAILED] == STUDY_TRANSITIONS[S.EXPIRED] == frozenset()


@pytest.mark.parametrize(
    ("studies", "expected"),
    [
        ({S.COMPLETE}, R.AVAILABLE),
        ({S.COMPLETE, S.PARTIAL}, R.PARTIAL),
        ({S.COMPLETE, S.FAILED}, R.PARTIAL),
        ({S.FAILED, S.EXPIRED}, R.FAILED),
        ({S.EXPIRED}, R.EXPIRED),
    ],
)
def test_the_outcome_of_a_retrieval_follows_its_settled_studies(studies, expected):  # noqa: ANN001
    assert lifecycle.outcome(studies) == expected


def test_a_move_outside_the_tables_is_refused(ctx):  # noqa: ANN001
    with ctx.sessions.begin() as session:
        with pytest.raises(ValueError, match="not allowed"):
            lifecycle.move(session, 1, R.FAILED, R.AVAILABLE)
        with pytest.raises(ValueError, match="not allowed"):
            lifecycle.move_study(session, 1, S.EXPIRED, S.PENDING)


def _retrieval(ctx: Context, state: RetrievalState, study_state: StudyState) -> tuple[int, int]:
    """A retrieval in ``state`` linked to one cached study in ``study_state``."""
    now = ctx.clock.now()
    key = uuid.uuid4().hex
    with ctx.sessions.begin() as session:
        study = CachedStudy(
            key=key,
            live_key=key,
            source="ao17",
            study_instance_uid=f"2.25.{uuid.uuid4().int}",
            state=study_state,
            study_metadata={"study": {}},
            created_at=now,
            updated_at=now,
        )
        retrieval = Retrieval(
            source="ao17", accession_numbers=["A1"], state=state, created_at=now, updated_at=now
        )
        session.add(RetrievalStudy(retrieval=retrieval, study=study))
        session.flush()
        return retrieval.id, study.id


def _at_once(*attempts: Callable[[], bool]) -> list[bool]:
    """Run the attempts in threads released by one barrier (two workers, same moment)."""
    barrier = threading.Barrier(len(attempts))

    def run(attempt: Callable[[], bool]) -> bool:
        barrier.wait()
        return attempt()

    with ThreadPoolExecutor(len(attempts)) as pool:
        return [f.result(timeout=30) for f in [pool.submit(run, a) for a in attempts]]


def _retrieval_move(ctx: Context, retrieval_id: int, to: RetrievalState) -> Callable[[], bool]:
    def attempt() -> bool:
        with ctx.sessions.begin() as session:
            return lifecycle.move(session, retrieval_id, R.RETRIEVING, to)

    return attempt


def test_two_writers_finishing_one_retrieval_have_one_winner(ctx):  # noqa: ANN001
    for _ in range(TRIES):
        retrieval_id, _study = _retrieval(ctx, R.RETRIEVING, S.COMPLETE)
        won = _at_once(
            _retrieval_move(ctx, retrieval_id, R.AVAILABLE),
            _retrieval_move(ctx, retrieval_id, R.FAILED),
        )
        assert sorted(won) == [False, True]
        with ctx.sessions() as session:
            state = session.get_one(Retrieval, retrieval_id).state
        assert state == (R.AVAILABLE if won[0] else R.FAILED)


def test_a_shared_study_settling_twice_at_once_finishes_and_audits_its_retrieval_once(ctx):  # noqa: ANN001
    for _ in range(TRIES):
        retrieval_id, _study = _retrieval(ctx, R.RETRIEVING, S.COMPLETE)
        finish = partial(settle.finish_if_settled, ctx, retrieval_id)
        _at_once(finish, finish)
        with ctx.sessions() as session:
            assert session.get_one(Retrieval, retrieval_id).state == R.AVAILABLE
            audited = session.scalar(
                select(func.count()).where(
                    AuditEvent.retrieval_id == retrieval_id,
                    AuditEvent.kind == "retrieval.completed",
                )
            )
        assert audited == 1


def _mover(ctx: Context, study_id: int) -> bool:
    """What a mover does first: take the study's lease, then pending → moving."""
    if not ledger.take(ctx, CachedStudy, study_id).acquired:
        return False
    with ctx.sessions.begin() as session:
        return lifecycle.move_study(session, study_id, S.PENDING, S.MOVING)


def _abandon(ctx: Context, study_id: int) -> bool:
    """What a failing request does: pending → failed, only while nobody holds the lease."""
    with ctx.sessions.begin() as session:
        free = ledger.free(CachedStudy, ctx.clock.now())
        return lifecycle.move_study(session, study_id, S.PENDING, S.FAILED, free)


def test_a_study_is_never_both_abandoned_and_moved(ctx):  # noqa: ANN001
    """A failing request abandons a pending study while a mover takes its lease and starts."""
    for _ in range(TRIES):
        _retrieval_id, study_id = _retrieval(ctx, R.RETRIEVING, S.PENDING)
        moved, abandoned = _at_once(
            partial(_mover, ctx, study_id), partial(_abandon, ctx, study_id)
        )
        assert sorted((moved, abandoned)) == [False, True]
        with ctx.sessions() as session:
            state = session.get_one(CachedStudy, study_id).state
        assert state == (S.MOVING if moved else S.FAILED)
