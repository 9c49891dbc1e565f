"""The settle, last stage of a retrieval: what arrived, each study's state, the retrieval's.

:func:`study` records a move's arrivals once it is over (the receiver wrote only files):
received flags and sizes, headers of instances no list named, the metadata keys the PACS left
empty, then ``complete``, or ``partial`` with the ``IncompleteMove`` that names the missing.

A retrieval's final state is decided once every study it needs has settled. Two paths reach
there and both are idempotent: the retrieval's own task at the end of an attempt, and the
mover of a shared study when its C-MOVE ends (``study_settled``), which finishes every
retrieval that was waiting for it, whichever process accepted it. Only retrievals in
``retrieving`` are finished by another's mover: one still ``querying`` has not linked all its
studies yet and finishes itself.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import IncompleteMove
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, headers, lifecycle, plan, query, statuses
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, RetrievalStudy
from pacsbridge.retrievals.move import Report

log = logging.getLogger(__name__)


def study(
    ctx: Context, expected: plan.Expected, report: Report, gaps: IncompleteMove | None = None
) -> None:
    """Arrivals into rows once; complete, or partial with ``gaps`` naming the missing.

    Files are read (SOP classes the C-FIND left empty, headers of unlisted arrivals, metadata
    keys to fill) before the write transaction, so the database lock is held briefly.
    """
    listed = _listed(ctx, expected.study_id)
    updates = _received_rows(expected, listed, report.arrived)
    extra = {sop: size for sop, size in report.arrived.items() if sop not in listed}
    described = [row for row in (_describe_file(expected, sop) for sop in extra) if row]
    series_of = {sop: listed[sop][1] for sop in report.arrived if sop in listed}
    series_of.update((row["sop_instance_uid"], row["series_instance_uid"]) for row in described)
    with ctx.sessions() as session:
        metadata = session.get_one(CachedStudy, expected.study_id).study_metadata
    metadata = headers.completed(metadata, _samples(expected, series_of))
    with ctx.sessions.begin() as session:
        if updates:
            session.execute(update(ExpectedInstance), updates)
        session.add_all(ExpectedInstance(**row) for row in described)
        entry = session.get_one(CachedStudy, expected.study_id)
        entry.study_metadata = metadata
        entry.notes = [*entry.notes, *report.notes, *_cap_confirmed(expected, extra)]
        _settle_entry(ctx, session, entry, report, gaps)


def _settle_entry(
    ctx: Context,
    session: Session,
    entry: CachedStudy,
    report: Report,
    gaps: IncompleteMove | None,
) -> None:
    """Counts, complete or partial, and the start of the retention clock."""
    now = ctx.clock.now()
    entry.received_count = len(report.arrived)
    entry.size_bytes = sum(report.arrived.values())
    entry.expected_count = max(entry.expected_count, len(report.arrived) + report.missing_count)
    entry.move_count += report.moves
    entry.errors = [*query.lasting(entry.errors), *_gaps_entry(ctx, gaps)]
    cache.mark_cached(ctx, entry)
    state = StudyState.PARTIAL if gaps is not None else StudyState.COMPLETE
    lifecycle.move_study(session, entry.id, StudyState.MOVING, state, updated_at=now)


def _gaps_entry(ctx: Context, gaps: IncompleteMove | None) -> list[dict[str, Any]]:
    """The ``move_incomplete`` error of a partial study, with the missing UIDs at top level."""
    if gaps is None:
        return []
    at = ctx.clock.now().isoformat()
    uids = gaps.params["missing_sop_instance_uids"]
    return [statuses.entry(gaps, at, ctx.settings, missing_sop_instance_uids=uids)]


def _listed(ctx: Context, study_id: int) -> dict[str, tuple[int, str, str]]:
    """SOP Instance UID → (row id, Series Instance UID, SOP Class UID) of the IMAGE list."""
    query = select(
        ExpectedInstance.id,
        ExpectedInstance.sop_instance_uid,
        ExpectedInstance.series_instance_uid,
        ExpectedInstance.sop_class_uid,
    ).where(ExpectedInstance.cached_study_id == study_id)
    with ctx.sessions() as session:
        return {sop: (row_id, series, cls) for row_id, sop, series, cls in session.execute(query)}


def _received_rows(
    expected: plan.Expected, listed: dict[str, tuple[int, str, str]], arrived: dict[str, int]
) -> list[dict[str, Any]]:
    """Received flags and sizes; a SOP class the C-FIND did not give is read from the file."""
    rows = []
    for sop, size in arrived.items():
        if sop not in listed:
            continue
        row_id, _series, sop_class = listed[sop]
        if not sop_class:
            sop_class = headers.sop_class_of(cache.instance_path(expected.folder, sop))
        rows.append(
            {"id": row_id, "received": True, "size_bytes": size, "sop_class_uid": sop_class}
        )
    return rows


def _samples(expected: plan.Expected, series_of: dict[str, str]) -> dict[str, Path]:
    """One received file per series: where empty metadata keys are read from."""
    samples: dict[str, Path] = {}
    for sop, series in series_of.items():
        samples.setdefault(series, cache.instance_path(expected.folder, sop))
    return samples


def _describe_file(expected: plan.Expected, sop: str) -> dict[str, Any] | None:
    """An instance no IMAGE-level list named (no IMAGE level, capped list): read its header."""
    path = cache.instance_path(expected.folder, sop)
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - the receiver wrote it; an unreadable one is just skipped
        log.warning("cannot read the header of a received instance in study %s", expected.study_id)
        return None
    number = ds.get("InstanceNumber")
    return {
        "cached_study_id": expected.study_id,
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "sop_instance_uid": sop,
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "instance_number": _int(number),
        "received": True,
        "size_bytes": path.stat().st_size,
    }


def _cap_confirmed(expected: plan.Expected, extra: dict[str, int]) -> list[dict[str, Any]]:
    """More arrived than the IMAGE list held: the C-FIND was capped (``plan.py``)."""
    if not expected.instances or not extra:
        return []
    return [
        statuses.note(
            "retrieval.cfind_cap_confirmed", listed=len(expected.instances), extra=len(extra)
        )
    ]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


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
        message=statuses.said_of(entry),
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
