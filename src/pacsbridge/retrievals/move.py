"""The move, second stage of a retrieval: C-MOVE one study to our AE (IHE RAD-16, PS3.4 C.4.2).

The expected instances come from the plan (``plan.py``), because a C-MOVE "Success" proves
nothing: some PACS answer before their C-STOREs are done, and the sub-operation counts are
16-bit (a study above 65,535 instances wraps). So completeness is checked against the
IMAGE-level list on disk, after a quiet period for late arrivals.

One move of a study is: a STUDY-level C-MOVE, the quiet period, then one IMAGE-level C-MOVE
per series for the instances still missing, listing their SOP Instance UIDs (a series UID is
required by hierarchical Q/R, PS3.4 C.4.2.2.1). That second request is part of the move, not
a retry of it: it asks for what the first left out, once. What is still missing after it
raises :class:`IncompleteMove`, which is permanent for this attempt: the study is settled
``partial`` with the missing UIDs, and the runner does not move it again; a later request for
it does (docs/integration-fse.md). Retrying a *failed* move is the runner's decision alone
(docs/architecture.md, "Retries").

Failure statuses with nothing received raise (``statuses.move_error``: retriable or not); a
peer that goes silent raises :class:`PeerTimeout` in ``dicomnet``, told here by its type and
explained with ``fse.move_timeout_seconds``. Failed sub-operations with something received
are kept as notes and settled by the completeness check.

The caller hands in the :class:`Report` this module fills, so what did arrive is known to
``settle`` whether the move ends normally or raises.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom import Dataset
from sqlalchemy.orm import Session

from pacsbridge import audit, metrics
from pacsbridge.context import Context
from pacsbridge.dicomnet.move import MoveResult, c_move
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import IncompleteMove, PeerTimeout, PeerUnavailable
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, statuses
from pacsbridge.retrievals.models import CachedStudy
from pacsbridge.retrievals.plan import Expected, Source

POLL_SECONDS = 0.05
SUCCESS, WARNING_SUB_OPERATIONS_FAILED = 0x0000, 0xB000
MAX_LISTED_UIDS = 20


@dataclass
class Report:
    """What happened: arrivals, the missing, notes for the caller, C-MOVEs issued."""

    arrived: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    missing_count: int = 0
    notes: list[dict[str, Any]] = field(default_factory=list)
    moves: int = 0
    sub_operations: int = 0


def study(ctx: Context, source: Source, plan: Expected, report: Report) -> None:
    """Move one study into ``report``; IncompleteMove when instances are still missing.

    Timed as a whole in ``metrics.RETRIEVAL_SECONDS`` (docs/operations.md).
    """
    started, outcome = time.monotonic(), "failed"
    try:
        _study(ctx, source, plan, report)
        outcome = "complete"
    except IncompleteMove:
        outcome = "partial"
        raise
    finally:
        metrics.RETRIEVAL_SECONDS.labels(source.name, outcome).observe(time.monotonic() - started)


def _study(ctx: Context, source: Source, plan: Expected, report: Report) -> None:
    result = _move(ctx, source.peer, plan, report, _identifier("STUDY", plan.study_uid))
    _judge(result, source.name, plan, report)
    _wait_quiet(ctx, plan, report)
    if not report.arrived and max(plan.count, len(plan.instances)) > 0:
        raise _nothing_arrived(source, result)
    if report.missing and plan.instances:
        _ask_for_the_missing(ctx, source.peer, plan, report)
    if report.missing_count:
        raise IncompleteMove(
            f"{report.missing_count} instances missing after the IMAGE-level C-MOVE",
            peer=source.name,
            missing=report.missing_count,
            missing_sop_instance_uids=sorted(report.missing),
        )


def _nothing_arrived(source: Source, result: MoveResult) -> PeerUnavailable:
    """A "Success" with no C-STORE: most often our AE is not registered on the source."""
    return PeerUnavailable(
        "C-MOVE answered without any C-STORE reaching us",
        peer=source.name,
        dicom_status=f"0x{result.status:04X}",
        explanation="retrieval.move_nothing_arrived",
        completed=result.completed,
    )


def _move(
    ctx: Context, peer: Peer, plan: Expected, report: Report, identifier: Dataset
) -> MoveResult:
    """One C-MOVE to our AE, as an audit event whatever its outcome.

    The DIMSE timeout of a C-MOVE is ``fse.move_timeout_seconds``: some PACS send no pending
    responses, so a large study legitimately keeps the final response waiting for minutes.
    A PACS silent for longer raises a retriable error that says so in Italian.
    """
    settings = ctx.settings
    report.moves += 1
    level = str(identifier.QueryRetrieveLevel)
    local = replace(ctx.local, dimse_timeout=settings.fse.move_timeout_seconds)
    _audit_move_started(ctx, plan, peer, level)
    try:
        result = c_move(local, peer, settings.dicom.ae_title, identifier, level)
    except PeerUnavailable as error:
        metrics.MOVE_FAILURES.labels(peer.label, metrics.dicom_status(None)).inc()
        _audit_move(ctx, plan, peer, level, None, error.detail)
        raise _timeout_or(error, peer, settings.fse.move_timeout_seconds) from error
    if _is_failure(result.status):
        metrics.MOVE_FAILURES.labels(peer.label, metrics.dicom_status(result.status)).inc()
    _audit_move(ctx, plan, peer, level, result, "")
    return result


def _timeout_or(error: PeerUnavailable, peer: Peer, seconds: float) -> PeerUnavailable:
    """A peer that went silent is a move timeout, explained; anything else stays as it was."""
    if not isinstance(error, PeerTimeout):
        return error
    return PeerTimeout(
        error.detail, peer=peer.label, explanation="retrieval.move_timeout", seconds=f"{seconds:g}"
    )


def _audit_move_started(ctx: Context, plan: Expected, peer: Peer, level: str) -> None:
    """``retrieval.move_started``: written before each C-MOVE leaves, so the audit trail shows
    a transfer that never answers (an ATNA Begin Transferring DICOM Instances, docs/atna.md)."""
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "retrieval.move_started",
            retrieval_id=plan.retrieval_id,
            **_subject(session, plan, peer, level),
            worker=ledger.worker_name(),
        )


def _subject(session: Session, plan: Expected, peer: Peer, level: str) -> dict[str, Any]:
    """The study moved, its patient and accession number, the source: both move events."""
    study = session.get_one(CachedStudy, plan.study_id)
    return {
        "study_instance_uid": plan.study_uid,
        "patient_id": study.patient_id,
        "issuer": study.issuer,
        "accession_number": study.accession_number,
        "source_ae_title": peer.ae_title,
        "source_host": peer.host,
        "level": level,
    }


def _audit_move(
    ctx: Context,
    plan: Expected,
    peer: Peer,
    level: str,
    result: MoveResult | None,
    failure: str,
) -> None:
    """``retrieval.moved``: every C-MOVE we issued (one per shared study, not one per request).

    With the source and the study's patient and accession number (an ATNA DICOM Instances
    Transferred, docs/atna.md).

    ``worker`` (``host:pid``) tells which node issued it, as ``phase.started`` does for imports
    (docs/deployment.md, "Which node did what").
    """
    status = f"0x{result.status:04X}" if result is not None else ""
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "retrieval.moved",
            retrieval_id=plan.retrieval_id,
            outcome="ok" if result is not None and not _is_failure(result.status) else "error",
            code=status,
            message=failure,
            **_subject(session, plan, peer, level),
            completed=result.completed if result else None,
            failed=result.failed if result else None,
            warning=result.warning if result else None,
            worker=ledger.worker_name(),
        )


def _identifier(
    level: str, study_uid: str, series_uid: str = "", sops: list[str] | None = None
) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    if sops:
        ds.SOPInstanceUID = sops
    return ds


def _judge(result: MoveResult, source: str, plan: Expected, report: Report) -> None:
    """Failure with nothing received raises; failed sub-operations become a note."""
    report.sub_operations = max(report.sub_operations, _total(result))
    failed_uids = [str(u) for u in (result.failed_sop_instance_uids or [])]
    if result.failed or result.status == WARNING_SUB_OPERATIONS_FAILED:
        report.notes.append(_sub_operations_note(result, failed_uids))
    if _is_failure(result.status) and not cache.present(plan.folder):
        raise statuses.move_error(
            result.status,
            source,
            failed=result.failed,
            failed_uids=", ".join(failed_uids[:MAX_LISTED_UIDS]),
        )


def _is_failure(status: int) -> bool:
    return status not in (SUCCESS, WARNING_SUB_OPERATIONS_FAILED) and status & 0xFF00 != 0xFF00


def _total(result: MoveResult) -> int:
    return (result.completed or 0) + (result.failed or 0) + (result.warning or 0)


def _sub_operations_note(result: MoveResult, failed_uids: list[str]) -> dict[str, Any]:
    return statuses.note(
        "retrieval.move_sub_operations_failed",
        dicom_status=f"0x{result.status:04X}",
        failed=result.failed,
        completed=result.completed,
        failed_uids=failed_uids[:MAX_LISTED_UIDS],
    )


def _wait_quiet(ctx: Context, plan: Expected, report: Report) -> None:
    """Poll the study folder until everything is there or nothing new came for a quiet period."""
    quiet = ctx.settings.fse.quiet_period_seconds
    last_count, last_change = -1, time.monotonic()
    while True:
        arrived = cache.present(plan.folder)
        if len(arrived) != last_count:
            last_count, last_change = len(arrived), time.monotonic()
        _set_missing(plan, report, arrived)
        if report.missing_count == 0 or time.monotonic() - last_change >= quiet:
            return
        time.sleep(POLL_SECONDS)  # polling the disk for late C-STOREs, not waiting blindly


def _set_missing(plan: Expected, report: Report, arrived: dict[str, int]) -> None:
    report.arrived = arrived
    report.missing = set(plan.instances) - set(arrived)
    expected = max(plan.count, len(plan.instances), report.sub_operations)
    by_count = max(expected - len(arrived), 0) if not plan.uid_list_complete else 0
    report.missing_count = max(len(report.missing), by_count)


def _ask_for_the_missing(ctx: Context, peer: Peer, plan: Expected, report: Report) -> None:
    """One IMAGE-level C-MOVE per series still missing instances (PS3.4 C.4.2.2.1).

    Best effort, inside the one move: a failure here is a note, and what is still missing
    afterwards is the IncompleteMove the caller settles.
    """
    by_series: dict[str, list[str]] = defaultdict(list)
    for sop in sorted(report.missing):
        by_series[plan.instances[sop]].append(sop)
    for series_uid, sops in by_series.items():
        identifier = _identifier("IMAGE", plan.study_uid, series_uid, sops)
        try:
            result = _move(ctx, peer, plan, report, identifier)
        except PeerUnavailable as error:  # best effort: what stays missing is IncompleteMove
            report.notes.append(statuses.note("retrieval.image_retry_failed", detail=error.detail))
            continue
        if result.failed or _is_failure(result.status):
            report.notes.append(
                _sub_operations_note(
                    result, [str(u) for u in result.failed_sop_instance_uids or []]
                )
            )
    _wait_quiet(ctx, plan, report)
    report.notes.append(
        statuses.note(
            "retrieval.image_retry",
            asked=sum(len(s) for s in by_series.values()),
            still_missing=report.missing_count,
        )
    )
