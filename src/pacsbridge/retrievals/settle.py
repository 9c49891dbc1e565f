"""A retrieval's final state, decided once every study it needs has settled.

Two paths reach here and both are idempotent: the retrieval's own task at the end of an
attempt, and the mover of a shared study when its C-MOVE ends (``study_settled``), which
finishes every retrieval that was waiting for it, whichever process accepted it. Only
retrievals in ``retrieving`` are finished by another's mover: one still ``querying`` has not
linked all its studies yet and finishes itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, lifecycle
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState
from pacsbridge.retrievals.models import CachedStudy, Retrieval, RetrievalStudy


def study_settled(ctx: Context, study_id: int) -> None:
    """Finish every waiting retrieval whose studies are now all settled."""
    query = (
        select(Retrieval.id)
        .join(RetrievalStudy)
        .where(
            RetrievalStudy.cached_study_id == study_id,
            Retrieval.state == RetrievalState.RETRIEVING,
        )
    )
    with ctx.sessions() as session:
        waiting = list(session.scalars(query))
    for retrieval_id in waiting:
        finish_if_settled(ctx, retrieval_id)


def finish_if_settled(ctx: Context, retrieval_id: int) -> bool:
    """Set the final state when all studies are settled; True when the retrieval is final."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        # locked: the retrieval's own task and another's mover may both get here at once
        retrieval = session.get_one(Retrieval, retrieval_id, with_for_update=True)
        if lifecycle.final(retrieval.state):
            return True
        studies = [link.study for link in retrieval.links]
        if not all(lifecycle.settled(s.state) for s in studies):
            retrieval.updated_at = now
            return False
        return _finish(
            session, retrieval, lifecycle.outcome(s.state for s in studies), now, studies
        )


def _finish(
    session: Session,
    retrieval: Retrieval,
    state: RetrievalState,
    now: datetime,
    studies: list[CachedStudy],
) -> bool:
    """Move to the final state and audit it; False (nothing audited) when another got there."""
    if not lifecycle.move(
        session, retrieval.id, retrieval.state, state, updated_at=now, finished_at=now
    ):
        return True  # finished by the other writer meanwhile
    details: dict[str, Any] = {
        "state": state,
        "studies": [s.study_instance_uid for s in studies],
        "moves": sum(s.move_count for s in studies),
        "received_instances": sum(s.received_count for s in studies),
    }
    if state == RetrievalState.FAILED:
        errors = [e for s in studies for e in s.errors]
        last = errors[-1] if errors else {}
        _audit_failed(session, now, retrieval.id, last, **details)
    else:
        audit.record(session, now, "retrieval.completed", retrieval_id=retrieval.id, **details)
    return True


def not_found(ctx: Context, retrieval_id: int) -> None:
    """No study matched: a final, normal answer (FSE spec §3.5 point 2)."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        retrieval = session.get_one(Retrieval, retrieval_id)
        if not lifecycle.move(
            session,
            retrieval_id,
            RetrievalState.QUERYING,
            RetrievalState.NOT_FOUND,
            updated_at=now,
            finished_at=now,
        ):
            return
        audit.record(
            session,
            now,
            "retrieval.completed",
            retrieval_id=retrieval_id,
            state=RetrievalState.NOT_FOUND,
            accession_numbers=retrieval.accession_numbers,
        )


def fail(ctx: Context, retrieval_id: int, entry: dict[str, Any]) -> None:
    """The request gives up (source down after every attempt, refused...).

    Studies it was to move and nobody moves fail with its reason; studies that did arrive
    stay served, so the retrieval ends ``partial`` rather than ``failed`` when there are any.
    """
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        retrieval = session.get_one(Retrieval, retrieval_id, with_for_update=True)
        if lifecycle.final(retrieval.state):
            return
        abandoned = _abandon_studies(session, retrieval, entry, now)
        studies = [link.study for link in retrieval.links]
        if any(lifecycle.cached(s.state) for s in studies):
            _finish(session, retrieval, RetrievalState.PARTIAL, now, studies)
        else:
            _fail_request(session, retrieval, entry, now)
    for study_id in abandoned:  # retrievals waiting for those studies fail with the reason
        cache.delete_study_folder(ctx, study_id)
        study_settled(ctx, study_id)


def _fail_request(
    session: Session, retrieval: Retrieval, entry: dict[str, Any], now: datetime
) -> None:
    if not lifecycle.move(
        session,
        retrieval.id,
        retrieval.state,
        RetrievalState.FAILED,
        updated_at=now,
        finished_at=now,
    ):
        return
    _audit_failed(session, now, retrieval.id, entry, attempts=len(retrieval.errors))


def _audit_failed(
    session: Session, now: datetime, retrieval_id: int, entry: dict[str, Any], **details: Any
) -> None:
    """``retrieval.failed`` with the error's code and its explanation (or message)."""
    audit.record(
        session,
        now,
        "retrieval.failed",
        retrieval_id=retrieval_id,
        outcome="error",
        code=str(entry.get("code", "")),
        message=str(entry.get("explanation") or entry.get("message", "")),
        **details,
    )


def _abandon_studies(
    session: Session, retrieval: Retrieval, entry: dict[str, Any], now: datetime
) -> list[int]:
    """Studies this retrieval was to move and nobody moves now fail with its reason.

    "Nobody moves it" is checked in the same statement that fails it (``ledger.free``): a
    mover that takes the study's lease at this moment keeps it pending, and this loses.
    """
    abandoned = []
    for link in retrieval.links:
        study = link.study
        if study.state == StudyState.PENDING and lifecycle.move_study(
            session,
            study.id,
            StudyState.PENDING,
            StudyState.FAILED,
            ledger.free(CachedStudy, now),
            live_key=None,
            errors=[*study.errors, entry],
            updated_at=now,
        ):
            abandoned.append(study.id)
    return abandoned
