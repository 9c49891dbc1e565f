"""The retrieval and cached-study lifecycles: states, one transition table each, one ``move()``.

Every state change of a retrieval or of a cached study goes through :func:`move` or
:func:`move_study`: one compare-and-set ``UPDATE … SET state = :to WHERE id = :id AND state =
:from``, like the imports' (docs/lifecycle.md, "How a state changes"). Several writers meet on
these rows, in any process: a retrieval is finished by its own task or by the mover of a study
it shares, failed by its task while another mover works on one of its studies; a study is
expired by the periodic job while a new request asks again for it, abandoned by a failing
request while a mover takes its lease. Of two that race only one UPDATE matches; the loser is
told (``False``) and nothing of it is applied. A change that also needs the row to be free of
any lease (abandoning a study nobody moves, expiring one) says so in the same statement, with
``jobs.ledger.free``, so the check and the change cannot be separated by another writer.

The tables in docs/lifecycle.md are generated from this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from pacsbridge.retrievals.models import CachedStudy, Retrieval

log = logging.getLogger(__name__)


class RetrievalState(StrEnum):
    """Where an FSE request is (``retrievals.state``, the ``state`` of the FSE API)."""

    QUEUED = "queued"
    QUERYING = "querying"
    RETRIEVING = "retrieving"
    NOT_FOUND = "not_found"
    AVAILABLE = "available"
    PARTIAL = "partial"
    FAILED = "failed"
    EXPIRED = "expired"


class StudyState(StrEnum):
    """A study in the cache (``cached_studies.state``), shared by the retrievals asking for it."""

    PENDING = "pending"
    MOVING = "moving"
    COMPLETE = "complete"
    PARTIAL = "partial"
    FAILED = "failed"
    EXPIRED = "expired"


R, S = RetrievalState, StudyState

#: Every allowed change of a retrieval's state; anything else is a programming error.
TRANSITIONS: dict[RetrievalState, frozenset[RetrievalState]] = {
    R.QUEUED: frozenset({R.QUERYING, R.AVAILABLE, R.FAILED}),
    R.QUERYING: frozenset({R.RETRIEVING, R.NOT_FOUND, R.FAILED}),
    R.RETRIEVING: frozenset({R.AVAILABLE, R.PARTIAL, R.FAILED, R.EXPIRED}),
    R.NOT_FOUND: frozenset(),
    R.AVAILABLE: frozenset({R.EXPIRED}),
    R.PARTIAL: frozenset({R.EXPIRED}),
    R.FAILED: frozenset(),
    R.EXPIRED: frozenset(),
}

#: Every allowed change of a cached study's state.
STUDY_TRANSITIONS: dict[StudyState, frozenset[StudyState]] = {
    S.PENDING: frozenset({S.MOVING, S.FAILED}),
    S.MOVING: frozenset({S.COMPLETE, S.PARTIAL, S.PENDING, S.FAILED}),
    S.COMPLETE: frozenset({S.EXPIRED}),
    S.PARTIAL: frozenset({S.PENDING, S.EXPIRED}),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
}

#: What each state means, for docs/lifecycle.md.
MEANING: dict[RetrievalState, str] = {
    R.QUEUED: "Accepted; the task has not started yet.",
    R.QUERYING: "C-FIND at STUDY level: which studies answer the accession numbers.",
    R.RETRIEVING: "Studies linked to the cache; their C-MOVEs run or are awaited.",
    R.NOT_FOUND: "No study matched: a normal, final answer.",
    R.AVAILABLE: "Every study is complete; the package may be downloaded.",
    R.PARTIAL: "Some instances or studies are missing (listed); the rest may be downloaded.",
    R.FAILED: "Nothing can be served; the errors say why.",
    R.EXPIRED: "Its studies left the cache after the retention.",
}

STUDY_MEANING: dict[StudyState, str] = {
    S.PENDING: "Found by the STUDY-level C-FIND; not moved (or to be moved again).",
    S.MOVING: "Its C-MOVE runs under the study's lease; the receiver admits its instances.",
    S.COMPLETE: "Every expected instance arrived; served from the cache until expiry.",
    S.PARTIAL: "Moved, then the gaps moved again; still missing some (listed). A new "
    "request moves it again.",
    S.FAILED: "Failed for good; its files are deleted and its cache key freed.",
    S.EXPIRED: "Past the retention; its files are deleted and its cache key freed.",
}

#: Retrievals the task still works on (the reaper re-enqueues; the receiver names them).
RUNNING = frozenset({R.QUEUED, R.QUERYING, R.RETRIEVING})
#: Retrievals whose answer is final (until expiry).
FINAL = frozenset(set(RetrievalState) - RUNNING)
#: Retrievals whose package may be built and downloaded.
SERVABLE = frozenset({R.AVAILABLE, R.PARTIAL})
#: Studies that still need a C-MOVE: ``moving`` under a free lease is a killed mover's.
TO_MOVE = frozenset({S.PENDING, S.MOVING})
#: Studies whose move is over: the retrievals waiting for them may finish.
SETTLED = frozenset({S.COMPLETE, S.PARTIAL, S.FAILED, S.EXPIRED})
#: Studies in the cache: served, and deleted at expiry.
CACHED = frozenset({S.COMPLETE, S.PARTIAL})


def running(state: str) -> bool:
    return state in RUNNING


def final(state: str) -> bool:
    return state in FINAL


def servable(state: str) -> bool:
    """May the package of a retrieval in ``state`` be built and downloaded?"""
    return state in SERVABLE


def to_move(state: str) -> bool:
    """Does a study in ``state`` still need a C-MOVE (by whoever takes its lease)?"""
    return state in TO_MOVE


def settled(state: str) -> bool:
    return state in SETTLED


def cached(state: str) -> bool:
    return state in CACHED


def outcome(study_states: Iterable[str]) -> RetrievalState:
    """A retrieval's final state from its settled studies.

    A study that expired before this retrieval finished (a race with the expiry job) is no
    study at all: nothing of it can be served.
    """
    states = set(study_states)
    if states == {S.COMPLETE}:
        return R.AVAILABLE
    if states <= {S.EXPIRED}:
        return R.EXPIRED
    if states <= {S.FAILED, S.EXPIRED}:
        return R.FAILED
    return R.PARTIAL


def move(session: Session, retrieval_id: int, from_: str, to: str, **values: Any) -> bool:
    """Compare-and-set a retrieval's state in the caller's transaction; False when it lost."""
    source, target = RetrievalState(from_), RetrievalState(to)
    if target not in TRANSITIONS[source]:
        raise ValueError(f"retrieval transition {source} → {target} is not allowed")
    return _compare_and_set(session, Retrieval, retrieval_id, source, target, (), values)


def move_study(
    session: Session,
    study_id: int,
    from_: str,
    to: str,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Compare-and-set a cached study's state; ``conditions`` join the same WHERE."""
    source, target = StudyState(from_), StudyState(to)
    if target not in STUDY_TRANSITIONS[source]:
        raise ValueError(f"cached study transition {source} → {target} is not allowed")
    return _compare_and_set(session, CachedStudy, study_id, source, target, conditions, values)


def _compare_and_set(
    session: Session,
    model: Any,
    row_id: int,
    source: StrEnum,
    target: StrEnum,
    conditions: tuple[ColumnElement[bool], ...],
    values: dict[str, Any],
) -> bool:
    statement = (
        update(model)
        .where(model.id == row_id, model.state == source, *conditions)
        .values(state=target, **values)
        .execution_options(synchronize_session="fetch")
    )
    won = session.execute(statement).rowcount == 1
    if not won:
        log.info(
            "%s %s: %s → %s lost to a concurrent change",
            model.__tablename__,
            row_id,
            source,
            target,
        )
    return won
