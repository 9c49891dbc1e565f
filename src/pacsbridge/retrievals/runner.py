"""The ``retrievals.retrieve`` task: plan → move → settle, each study under its own lease.

1. ``plan.find_and_link``: STUDY level for the request, each study linked to its cache entry
   (skipped on a retry whose STUDY level completed).
2. Per study, unless it is settled or another mover holds it: take the study's lease, then a
   source slot; ``plan.describe`` (SERIES, IMAGE: the expected instances), ``move.study``,
   ``settle.study``. Of two retrievals that want the same study (in any process) exactly one
   issues the C-MOVE; the other is linked to the same entry and is finished by
   ``settle.study_settled`` when the move is over (docs/integration-fse.md: simultaneous
   requests for the same study share one C-MOVE).
3. ``settle.finish_if_settled``: the retrieval's final state once every study has settled.

A retrieval whose source is paused (``pauses.hold_back``, the support console) does none of
this: it stays queued, costs no attempt, and runs when the source is resumed.

Retries are decided here and nowhere else (docs/architecture.md, "Retries"): a retriable
error (source down, busy, out of resources, a C-MOVE timeout) costs one of ``fse.attempts``
and schedules the whole task again after the ledger's back-off; what is already cached is
not moved twice. A permanent error of one study (A801, refused) fails that study and the
others go on; instances still missing after a move (``IncompleteMove``) make that study
``partial``; a permanent error of the request itself (the query refused) fails the
retrieval at once. The task holds the retrieval's lease and each study's (``jobs.ledger``,
renewed by their heartbeats however long the query, the wait for a source slot and the moves
take), so a second delivery does nothing (Huey delivers at most once; the reaper in
``tasks.py`` re-enqueues what a killed worker dropped).
"""

from __future__ import annotations

import logging

from pacsbridge.context import Context
from pacsbridge.errors import (
    IncompleteMove,
    PacsbridgeError,
    PeerRefused,
    PeerUnavailable,
    from_os_error,
)
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, leases, lifecycle, move, pauses, plan, settle, statuses
from pacsbridge.retrievals.lifecycle import StudyState
from pacsbridge.retrievals.models import CachedStudy, Retrieval
from pacsbridge.retrievals.plan import Request, Source

log = logging.getLogger(__name__)
TASK = ledger.Task.RETRIEVE


def run(ctx: Context, retrieval_id: int) -> None:
    """The task body; a retry is enqueued only after the lease is released."""
    with ledger.held(ctx, Retrieval, retrieval_id) as lease:
        if not lease.acquired:
            return  # another worker holds it
        waiting = pauses.hold_back(ctx, retrieval_id)  # a paused source: wait, fail nothing
        delay = _attempt(ctx, retrieval_id) if waiting is None else None
    if delay is not None:
        ledger.schedule_retry(ctx.queue, TASK, retrieval_id, delay)
    elif waiting is not None and not ctx.queue.immediate:  # immediate: resume() re-enqueues
        ledger.schedule_retry(ctx.queue, TASK, retrieval_id, waiting)


def _attempt(ctx: Context, retrieval_id: int) -> float | None:
    request = _load(ctx, retrieval_id)
    if request is None:
        return None
    try:
        _work(ctx, request)
    except Exception as error:  # noqa: BLE001 - a bug must not leave it "retrieving" forever
        known = from_os_error(error)  # ours as they are, a full disk as StorageFull
        if known is None:
            return _unexpected(ctx, request)
        return _failed_attempt(ctx, request, known)
    return None


def _unexpected(ctx: Context, request: Request) -> float | None:
    log.exception("retrieval %s failed unexpectedly", request.id)
    return _failed_attempt(ctx, request, PacsbridgeError("unexpected error"))


def _work(ctx: Context, request: Request) -> None:
    source = _source(ctx, request)
    study_ids = plan.linked(ctx, request.id) or plan.find_and_link(ctx, request, source)
    if not study_ids:
        settle.not_found(ctx, request.id)
        return
    for study_id in study_ids:
        try:
            bring_in(ctx, request.id, study_id, source)
        except PacsbridgeError as error:
            if error.retriable:
                raise
            log.info("study %s failed for good: %s", study_id, error.code)
    settle.finish_if_settled(ctx, request.id)


def _load(ctx: Context, retrieval_id: int) -> Request | None:
    with ctx.sessions() as session:
        row = session.get(Retrieval, retrieval_id)
        if row is None or not lifecycle.running(row.state):
            return None
        return Request(row.id, row.source, list(row.accession_numbers), row.patient_id, row.issuer)


def _source(ctx: Context, request: Request) -> Source:
    settings = ctx.settings.source(request.source)
    if settings is None:
        raise PeerRefused(f"source {request.source!r} is not configured", peer=request.source)
    return Source(settings, ctx.network.sources[settings.name])


def bring_in(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    """Move the study unless it is settled or another mover holds it (then we are linked).

    Whatever the outcome, the retrievals waiting for this study are told once the lease is
    released (``settle.study_settled``): a study that failed for good must fail them too,
    not leave them ``retrieving`` until the reaper notices.
    """
    lease = ledger.take(ctx, CachedStudy, study_id)
    if not lease.acquired:
        return  # another C-MOVE of this study is in flight: settle() will finish us
    try:
        with ledger.kept(ctx, lease):
            if lifecycle.to_move(_state(ctx, study_id)):
                _bring_in_held(ctx, retrieval_id, study_id, source, lease)
    finally:
        if lifecycle.settled(_state(ctx, study_id)):
            settle.study_settled(ctx, study_id)


def _bring_in_held(
    ctx: Context, retrieval_id: int, study_id: int, source: Source, study: ledger.Lease
) -> None:
    wait = ctx.settings.fse.move_timeout_seconds
    with leases.source_slot(ctx, source.name, wait) as slot:
        if slot is None:
            raise PeerUnavailable(
                "every slot busy", peer=source.name, explanation="retrieval.source_busy"
            )
        if study.lost:  # this process stalled past the lease and another mover took over
            return
        try:
            cache.check_disk(ctx)
            plan.describe(ctx, study_id, source)
            _move_and_settle(ctx, retrieval_id, study_id, source)
        except PacsbridgeError as error:
            _back_to_pending(ctx, study_id, error)
            raise
        except Exception:
            _back_to_pending(ctx, study_id, PacsbridgeError("unexpected error"))
            raise


def _move_and_settle(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    """The move and its settle; instances still missing settle the study ``partial``."""
    expected = plan.expected(ctx, retrieval_id, study_id)
    cache.check_room(ctx, retrieval_id, study_id, expected.count)  # before any C-MOVE
    cache.open_study_folder(ctx, study_id)  # the receiver writes only into live folders
    ctx.listener.ensure()  # the process that listened on our port may have died: take it over
    _start_moving(ctx, study_id)
    report = move.Report()
    try:
        move.study(ctx, source, expected, report)
    except IncompleteMove as gaps:
        settle.study(ctx, expected, report, gaps)
        return
    settle.study(ctx, expected, report)


def _state(ctx: Context, study_id: int) -> str:
    with ctx.sessions() as session:
        return session.get_one(CachedStudy, study_id).state


def _start_moving(ctx: Context, study_id: int) -> None:
    """Pending → moving; a killed mover's study is ``moving`` already (we hold its lease now)."""
    with ctx.sessions.begin() as session:
        if session.get_one(CachedStudy, study_id).state == StudyState.PENDING:
            lifecycle.move_study(
                session, study_id, StudyState.PENDING, StudyState.MOVING, updated_at=ctx.clock.now()
            )


def _back_to_pending(ctx: Context, study_id: int, error: PacsbridgeError) -> None:
    """Retriable: pending again (the retrieval's errors show the attempt). Else failed here.

    A failed entry is never served: its key is freed and what did arrive goes.
    """
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        study = session.get_one(CachedStudy, study_id)
        if error.retriable:
            if study.state == StudyState.MOVING:
                lifecycle.move_study(
                    session, study_id, StudyState.MOVING, StudyState.PENDING, updated_at=now
                )
            return
        entry = statuses.entry(error, now.isoformat(), ctx.settings)
        lifecycle.move_study(
            session,
            study_id,
            study.state,
            StudyState.FAILED,
            errors=[*study.errors, entry],
            live_key=None,
            updated_at=now,
        )
    cache.delete_study_folder(ctx, study_id)


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
