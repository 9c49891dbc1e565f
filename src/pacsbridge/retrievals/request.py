"""Accept an FSE request: validate the source, answer from the cache, or queue the retrieval.

The fast path: when every accession number already maps to complete, live cache entries of
that source (and patient/issuer, when given), the retrieval is ``available`` at once, without
any DICOM traffic. Otherwise ``retrievals.retrieve`` is queued; the task re-checks the cache
per study after the STUDY-level C-FIND (a study found under a new accession number, or a
partial entry, is moved again) and joins a C-MOVE already in flight for the same study.

The disk high-water mark is checked after the cache (a cache hit costs no disk) and refuses
the request with ``storage_full`` (507) instead of filling the disk.
"""

from __future__ import annotations

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import InputError, StorageFull
from pacsbridge.jobs import ledger
from pacsbridge.messages import said
from pacsbridge.retrievals import cache, lifecycle
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState
from pacsbridge.retrievals.models import CachedStudy, Retrieval, RetrievalStudy
from pacsbridge.retrievals.schemas import RetrievalRequest


def accept(ctx: Context, body: RetrievalRequest, actor: str = "fse") -> Retrieval:
    """Create the retrieval; answered from the cache, or queued."""
    if ctx.settings.source(body.source) is None:
        raise InputError(
            f"unknown source {body.source!r}",
            fields=[{"field": "source", "error": said("retrieval.unknown_source")}],
        )
    cache.expire(ctx)  # an entry past its retention is never served, even between expiry runs
    retrieval = _create(ctx, body, actor)
    if _answer_from_cache(ctx, retrieval.id, body):
        return _reload(ctx, retrieval.id)
    _check_disk(ctx, retrieval.id)
    ctx.queue.enqueue(ledger.Task.RETRIEVE, retrieval.id)
    return _reload(ctx, retrieval.id)


def _create(ctx: Context, body: RetrievalRequest, actor: str) -> Retrieval:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        retrieval = Retrieval(
            source=body.source,
            accession_numbers=body.accession_numbers,
            patient_id=body.patient_id or "",
            issuer=body.issuer or "",
            state=RetrievalState.QUEUED,
            created_at=now,
            updated_at=now,
            attempts_left=ctx.settings.fse.attempts,
        )
        session.add(retrieval)
        session.flush()
        audit.record(
            session,
            now,
            "retrieval.requested",
            retrieval_id=retrieval.id,
            actor=actor,
            source=body.source,
            accession_numbers=body.accession_numbers,
            patient_id=body.patient_id or "",
            issuer=body.issuer or "",
        )
        return retrieval


def _answer_from_cache(ctx: Context, retrieval_id: int, body: RetrievalRequest) -> bool:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        studies = _cached(session, body)
        if not studies:
            return False
        if not lifecycle.move(
            session,
            retrieval_id,
            RetrievalState.QUEUED,
            RetrievalState.AVAILABLE,
            cache_hit=True,
            updated_at=now,
            finished_at=now,
        ):
            return False  # nothing else knows the row yet; should it change, the task decides
        retrieval = session.get_one(Retrieval, retrieval_id)
        for study in studies:
            session.add(RetrievalStudy(retrieval=retrieval, study=study, from_cache=True))
        uids = [s.study_instance_uid for s in studies]
        audit.record(session, now, "retrieval.cache_hit", retrieval_id=retrieval_id, studies=uids)
        audit.record(
            session,
            now,
            "retrieval.completed",
            retrieval_id=retrieval_id,
            state=RetrievalState.AVAILABLE,
            studies=uids,
            moves=0,
        )
        return True


def _cached(session, body: RetrievalRequest) -> list[CachedStudy]:  # noqa: ANN001
    """Complete entries for every accession number, or nothing (all or none)."""
    found: dict[int, CachedStudy] = {}
    for accession in body.accession_numbers:
        entries = cache.live_by_accession(
            session, body.source, accession, body.patient_id or "", body.issuer or ""
        )
        if not entries or any(e.state != StudyState.COMPLETE for e in entries):
            return []
        found.update((e.id, e) for e in entries)
    return list(found.values())


def _check_disk(ctx: Context, retrieval_id: int) -> None:
    try:
        cache.check_disk(ctx)
    except StorageFull as error:
        _refuse(ctx, retrieval_id, error)
        raise


def _refuse(ctx: Context, retrieval_id: int, error: StorageFull) -> None:
    now = ctx.clock.now()
    info = {**error.stored(), "at": now.isoformat()}
    with ctx.sessions.begin() as session:
        lifecycle.move(
            session,
            retrieval_id,
            RetrievalState.QUEUED,
            RetrievalState.FAILED,
            errors=[info],
            updated_at=now,
            finished_at=now,
        )
        audit.record(
            session,
            now,
            "retrieval.failed",
            retrieval_id=retrieval_id,
            outcome="error",
            code=error.code,
            message=error.said(),
            detail=error.detail,
        )


def _reload(ctx: Context, retrieval_id: int) -> Retrieval:
    with ctx.sessions() as session:
        return session.get_one(Retrieval, retrieval_id)
