"""A retrieval's final state, decided once every study it needs has settled.

Two paths reach here and both are idempotent: the retrieval's own task at the end of an
attempt, and the mover of a shared study when its C-MOVE ends (``study_settled``), which
finishes every retrieval that was waiting for it, whichever process accepted it. Only
retrievals in ``retrieving`` are finished by another's mover: one still ``querying`` has not
linked all its studies yet and finishes itself.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.retrievals import cache
from pacsbridge.retrievals.models import (
    SETTLED_STUDY_STATES,
    CachedStudy,
    Retrieval,
    RetrievalStudy,
)

FINAL = ("not_found", "available", "partial", "failed", "expired")


def study_settled(ctx: Context, study_id: int) -> None:
    """Finish every waiting retrieval whose studies are now all settled."""
    query = (
        select(Retrieval.id)
        .join(RetrievalStudy)
        .where(RetrievalStudy.cached_study_id == study_id, Retrieval.state == "retrieving")
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
        if retrieval.state in FINAL:
            return True
        studies = [link.study for link in retrieval.links]
        if any(s.state not in SETTLED_STUDY_STATES for s in studies):
            retrieval.state, retrieval.updated_at = "retrieving", now
            return False
        _finish(session, retrieval, _final_state(studies), now, studies)
        return True


def _final_state(studies: list[CachedStudy]) -> str:
    """A study that expired before this retrieval finished (a race with the expiry job) is
    no study at all: nothing of it can be served."""
    states = {s.state for s in studies}
    if states == {"complete"}:
        return "available"
    if states <= {"expired"}:
        return "expired"
    if states <= {"failed", "expired"}:
        return "failed"
    return "partial"


def _finish(
    session: Session, retrieval: Retrieval, state: str, now: datetime, studies: list[CachedStudy]
) -> None:
    retrieval.state, retrieval.updated_at, retrieval.finished_at = state, now, now
    details: dict[str, Any] = {
        "state": state,
        "studies": [s.study_instance_uid for s in studies],
        "moves": sum(s.move_count for s in studies),
        "received_instances": sum(s.received_count for s in studies),
    }
    if state == "failed":
        errors = [e for s in studies for e in s.errors]
        last = errors[-1] if errors else {}
        _audit_failed(session, now, retrieval.id, last, **details)
    else:
        audit.record(session, now, "retrieval.completed", retrieval_id=retrieval.id, **details)


def not_found(ctx: Context, retrieval_id: int) -> None:
    """No study matched: a final, normal answer (FSE spec §3.5 point 2)."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        retrieval = session.get_one(Retrieval, retrieval_id)
        retrieval.state, retrieval.updated_at, retrieval.finished_at = "not_found", now, now
        audit.record(
            session,
            now,
            "retrieval.completed",
            retrieval_id=retrieval_id,
            state="not_found",
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
        if retrieval.state in FINAL:
            return
        abandoned = _abandon_studies(retrieval, entry)
        studies = [link.study for link in retrieval.links]
        if any(s.state in ("complete", "partial") for s in studies):
            _finish(session, retrieval, "partial", now, studies)
        else:
            _fail_request(session, retrieval, entry, now)
    for study_id in abandoned:  # retrievals waiting for those studies fail with the reason
        shutil.rmtree(cache.study_dir(ctx, study_id), ignore_errors=True)
        study_settled(ctx, study_id)


def _fail_request(
    session: Session, retrieval: Retrieval, entry: dict[str, Any], now: datetime
) -> None:
    retrieval.state, retrieval.updated_at, retrieval.finished_at = "failed", now, now
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


def _abandon_studies(retrieval: Retrieval, entry: dict[str, Any]) -> list[int]:
    """Studies this retrieval was to move and nobody moves now fail with its reason."""
    abandoned = []
    for link in retrieval.links:
        study = link.study
        if study.state == "pending" and study.lease_until is None:
            study.state, study.live_key = "failed", None
            study.errors = [*study.errors, entry]
            abandoned.append(study.id)
    return abandoned
