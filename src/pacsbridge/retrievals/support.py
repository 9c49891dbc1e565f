"""What the support console does with retrievals (docs/support.md): find, read, retry, purge.

A retry asks the source again for the same accession numbers as a new retrieval (a failed
retrieval's state is final, and the FSE keeps its id): what is cached is served, the rest is
moved. A purge removes the retrieval's studies from the cache through ``cache.purge``, the
only code that deletes study folders. Both are audited with the staff member as ``actor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, func, select

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, NotFoundError
from pacsbridge.messages import DEFAULT_LANGUAGE
from pacsbridge.retrievals import cache, lifecycle, request, views
from pacsbridge.retrievals.lifecycle import RetrievalState
from pacsbridge.retrievals.models import ExpectedInstance, Retrieval, RetrievalStudy
from pacsbridge.retrievals.schemas import RetrievalRequest


@dataclass(frozen=True)
class Filters:
    state: str = ""
    source: str = ""
    accession: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None


def search(ctx: Context, filters: Filters, page: int, per_page: int) -> tuple[list[dict], int]:
    """One page of matching retrievals, newest first, and how many match in all."""
    query = _filtered(select(Retrieval), filters)
    with ctx.sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Retrieval.id.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        return [_summary(r) for r in rows], total


def _filtered(query: Select, f: Filters) -> Select:
    if f.state:
        query = query.where(Retrieval.state == f.state)
    if f.source:
        query = query.where(Retrieval.source == f.source)
    if f.accession:
        # the JSON list as text: the quoted number is a whole element on SQLite and PostgreSQL
        query = query.where(
            cast(Retrieval.accession_numbers, String).contains(f'"{f.accession}"', autoescape=True)
        )
    if f.created_from is not None:
        query = query.where(Retrieval.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(Retrieval.created_at < f.created_to)
    return query


def _summary(row: Retrieval) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "source": row.source,
        "accession_numbers": list(row.accession_numbers),
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "errors": len(row.errors),
        "attempts_left": row.attempts_left,
    }


def detail(ctx: Context, retrieval_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The FSE's document, the audit log, and the instances still missing per study, in the
    reader's language."""
    document = views.document(ctx, retrieval_id, lang)
    with ctx.sessions() as session:
        events = [audit.as_dict(e, lang) for e in audit.events_of_retrieval(session, retrieval_id)]
        missing = _missing(session, retrieval_id)
        cached = bool(_cached_ids(session, retrieval_id))
    return {
        "document": document,
        "events": events,
        "missing": missing,
        "retriable": retriable(document["state"]),
        "purgeable": cached,
    }


def _missing(session: Any, retrieval_id: int) -> list[dict[str, Any]]:
    query = (
        select(ExpectedInstance)
        .join(RetrievalStudy, RetrievalStudy.cached_study_id == ExpectedInstance.cached_study_id)
        .where(RetrievalStudy.retrieval_id == retrieval_id, ExpectedInstance.received.is_(False))
        .order_by(ExpectedInstance.id)
    )
    return [
        {
            "study_instance_uid": i.study.study_instance_uid,
            "series_instance_uid": i.series_instance_uid,
            "sop_instance_uid": i.sop_instance_uid,
        }
        for i in session.scalars(query)
    ]


def _cached_ids(session: Any, retrieval_id: int) -> list[tuple[int, str]]:
    """The retrieval's studies in the cache: (cached study id, Study Instance UID)."""
    row = session.get(Retrieval, retrieval_id)
    if row is None:
        raise NotFoundError(f"retrieval {retrieval_id}")
    return [
        (link.study.id, link.study.study_instance_uid)
        for link in row.links
        if lifecycle.cached(link.study.state)
    ]


def retriable(state: str) -> bool:
    """Over and not wholly served: failed, not found, partial or expired."""
    return lifecycle.final(state) and state != RetrievalState.AVAILABLE


def retry(ctx: Context, retrieval_id: int, actor: str) -> int:
    """A new retrieval of the same request; its id. Only once the old one is over (and was not
    wholly served: that needs no retry)."""
    with ctx.sessions() as session:
        row = session.get(Retrieval, retrieval_id)
        if row is None:
            raise NotFoundError(f"retrieval {retrieval_id}")
        if not retriable(row.state):
            raise ConflictError(f"retrieval is {row.state}", state=row.state)
        body = RetrievalRequest(
            source=row.source,
            accession_numbers=list(row.accession_numbers),
            patient_id=row.patient_id or None,
            issuer=row.issuer or None,
        )
    new = request.accept(ctx, body, actor=actor)
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "support.retrieval_retried",
            retrieval_id=retrieval_id,
            actor=actor,
            new_retrieval_id=new.id,
        )
    return new.id


def purge(ctx: Context, retrieval_id: int, actor: str) -> list[str]:
    """Remove the retrieval's cached studies (their UIDs); 409 when none is cached."""
    with ctx.sessions() as session:
        ids = _cached_ids(session, retrieval_id)
    purged = [uid for study_id, uid in ids if cache.purge(ctx, study_id, actor)]
    if not purged:
        raise ConflictError("nothing of this retrieval is in the cache")
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "support.purged",
            retrieval_id=retrieval_id,
            actor=actor,
            study_instance_uids=purged,
        )
    return purged
