"""The ``retrievals.retrieve`` task: query, link each study to the cache, move, finish.

Retries are decided here and nowhere else (docs/architecture.md, "Durability"): a retriable
error (source down, busy, out of resources, a C-MOVE timeout) costs one of ``fse.attempts``
and schedules the whole task again after the ledger's back-off; what is already cached is
not moved twice. A permanent error of one study (A801, refused) fails that study and the
others go on; a permanent error of the request itself (the query refused) fails the
retrieval at once. The task holds the retrieval's lease (``ledger.held``, renewed by its
heartbeat however long the query, the wait for a source slot and the moves take), so a
second delivery does nothing (Huey delivers at most once; the reaper in ``tasks.py``
re-enqueues what a killed worker dropped).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from pydicom import Dataset
from sqlalchemy import select

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import PacsbridgeError, PeerRefused, StorageFull
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, mover, query, settle, statuses
from pacsbridge.retrievals.models import Retrieval, RetrievalStudy

log = logging.getLogger(__name__)
RUNNABLE = ("queued", "querying", "retrieving")
TASK = ledger.Task.RETRIEVE


@dataclass(frozen=True)
class Request:
    id: int
    source: str
    accession_numbers: list[str]
    patient_id: str
    issuer: str


def run(ctx: Context, retrieval_id: int) -> None:
    """The task body; a retry is enqueued only after the lease is released."""
    with ledger.held(ctx, Retrieval, retrieval_id) as lease:
        if not lease.acquired:
            return  # another worker holds it
        delay = _attempt(ctx, retrieval_id)
    if delay is not None:
        ledger.schedule_retry(ctx.queue, TASK, retrieval_id, delay)


def _attempt(ctx: Context, retrieval_id: int) -> float | None:
    request = _load(ctx, retrieval_id)
    if request is None:
        return None
    try:
        _work(ctx, request)
    except PacsbridgeError as error:
        return _failed_attempt(ctx, request, error)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            return _failed_attempt(ctx, request, StorageFull(str(error)))
        return _unexpected(ctx, request)
    except Exception:  # noqa: BLE001 - a bug must not leave the request "retrieving" forever
        return _unexpected(ctx, request)
    return None


def _unexpected(ctx: Context, request: Request) -> float | None:
    log.exception("retrieval %s failed unexpectedly", request.id)
    return _failed_attempt(ctx, request, PacsbridgeError("unexpected error"))


def _work(ctx: Context, request: Request) -> None:
    source = _source(ctx, request)
    study_ids = _linked(ctx, request.id) or _query_and_link(ctx, request, source)
    if not study_ids:
        settle.not_found(ctx, request.id)
        return
    for study_id in study_ids:
        try:
            mover.bring_in(ctx, request.id, study_id, source)
        except PacsbridgeError as error:
            if error.retriable:
                raise
            log.info("study %s failed for good: %s", study_id, error.code)
    settle.finish_if_settled(ctx, request.id)


def _load(ctx: Context, retrieval_id: int) -> Request | None:
    with ctx.sessions() as session:
        row = session.get(Retrieval, retrieval_id)
        if row is None or row.state not in RUNNABLE:
            return None
        return Request(row.id, row.source, list(row.accession_numbers), row.patient_id, row.issuer)


def _source(ctx: Context, request: Request) -> mover.Source:
    settings = ctx.settings.source(request.source)
    if settings is None:
        raise PeerRefused(f"source {request.source!r} is not configured", peer=request.source)
    return mover.Source(settings, ctx.network.sources[settings.name])


def _linked(ctx: Context, retrieval_id: int) -> list[int]:
    """The studies of an earlier attempt whose query phase completed."""
    query_ = select(RetrievalStudy.cached_study_id).where(
        RetrievalStudy.retrieval_id == retrieval_id
    )
    with ctx.sessions() as session:
        return list(session.scalars(query_.order_by(RetrievalStudy.id)))


def _query_and_link(ctx: Context, request: Request, source: mover.Source) -> list[int]:
    """Find Study Metadata at STUDY level, then one cache entry per study, in one transaction."""
    _set_state(ctx, request.id, "querying")
    cache.expire(ctx)  # never link an entry past its retention (the periodic job may lag)
    rows, notes, errors = query.find_studies(
        ctx.local,
        source.peer,
        request.accession_numbers,
        request.patient_id,
        request.issuer,
    )
    with ctx.sessions.begin() as session:
        retrieval = session.get_one(Retrieval, request.id)
        retrieval.notes = [*retrieval.notes, *notes]
        retrieval.errors = [*retrieval.errors, *errors]  # answers dropped for a bad UID
        studies = [_link(ctx, session, retrieval, request, row) for row in rows]
        hits = [s.study_instance_uid for s in studies if s.state == "complete"]
        if hits:
            retrieval.cache_hit = True
            audit.record(
                session,
                ctx.clock.now(),
                "retrieval.cache_hit",
                retrieval_id=request.id,
                studies=hits,
            )
        if studies:
            retrieval.state = "retrieving"  # linked: a shared study's mover may now finish us
        return [s.id for s in studies]


def _link(ctx: Context, session, retrieval: Retrieval, request: Request, row: Dataset):  # noqa: ANN001, ANN202
    found = {
        "source": request.source,
        "issuer": str(row.get("IssuerOfPatientID", "") or "") or request.issuer,
        "patient_id": str(row.get("PatientID", "") or ""),
        "study_uid": str(row.StudyInstanceUID),
        "accession_number": str(row.get("AccessionNumber", "") or ""),
    }
    study = cache.entry_for(ctx, session, found)
    if not study.study_metadata:
        study.study_metadata = {"study": mover.dataset_json(row)}
    if study.state == "partial":  # a new request asks again for what the PACS did not send
        study.state = "pending"
    session.add(
        RetrievalStudy(retrieval=retrieval, study=study, from_cache=study.state == "complete")
    )
    return study


def _set_state(ctx: Context, retrieval_id: int, state: str) -> None:
    with ctx.sessions.begin() as session:
        row = session.get_one(Retrieval, retrieval_id)
        row.state, row.updated_at = state, ctx.clock.now()


def _failed_attempt(ctx: Context, request: Request, error: PacsbridgeError) -> float | None:
    """One attempt used: back-off and retry while attempts remain, else fail with the reason."""
    now = ctx.clock.now()
    total = ctx.settings.fse.attempts
    with ctx.sessions.begin() as session:
        row = session.get_one(Retrieval, request.id)
        row.attempts_left = max(row.attempts_left - 1, 0)
        entry = statuses.entry(
            error,
            now.isoformat(),
            ctx.settings,
            attempt=total - row.attempts_left,
            attempts_left=row.attempts_left,
        )
        row.errors, row.updated_at = [*row.errors, entry], now
        if error.retriable and row.attempts_left > 0:
            delay, row.retry_at = ledger.retry_at(ctx.settings.jobs, total - row.attempts_left, now)
            return delay
    settle.fail(ctx, request.id, entry)
    return None
