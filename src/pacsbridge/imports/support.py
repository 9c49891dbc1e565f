"""What the support console does with imports (docs/support.md): find, read, retry, abort.

The support desk is not bound to one launch: it finds any import by its "Id per assistenza"
(the import id), the patient, the order, the state, the dates or the operator. The reads and
the actions reuse the operator's own (``monitor.progress``, ``views.document``,
``confirmation.cancel`` and ``recheck``) under the import's own launch, so the support desk
sees exactly what the operator saw and a cancel tells the RIS as an operator's does. Every
action is audited with the staff member's user name as ``actor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from pacsbridge import audit, messages
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, NotFoundError
from pacsbridge.imports import confirmation, lifecycle, monitor, views
from pacsbridge.imports.lifecycle import ImportState, PhaseState
from pacsbridge.imports.models import Import, ImportInstance, Launch, PhaseRun
from pacsbridge.jobs import ledger
from pacsbridge.messages import DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Filters:
    """The search form; empty fields do not filter. ``created_*`` bound ``imports.created_at``."""

    support_id: int | None = None
    patient: str = ""
    order: str = ""
    accession: str = ""
    state: str = ""
    operator: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None


def search(ctx: Context, filters: Filters, page: int, per_page: int) -> tuple[list[dict], int]:
    """One page of matching imports, newest first, and how many match in all."""
    query = _filtered(select(Import).join(Launch, Import.launch_id == Launch.id), filters)
    with ctx.sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Import.id.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        return [_summary(row) for row in rows], total


def _filtered(query: Select, f: Filters) -> Select:
    if f.support_id is not None:
        query = query.where(Import.id == f.support_id)
    if f.patient:
        value = f.patient.strip()
        query = query.where(
            or_(
                Launch.family_name.icontains(value, autoescape=True),
                Launch.given_name.icontains(value, autoescape=True),
                (Launch.family_name + " " + Launch.given_name).icontains(value, autoescape=True),
                Launch.patient_id == value,
                Launch.fiscal_code == value.upper(),
            )
        )
    if f.order:
        query = query.where(Import.order_number == f.order.strip())
    if f.accession:
        query = query.where(Launch.accession_number == f.accession.strip())
    if f.state:
        query = query.where(Import.state == f.state)
    if f.operator:
        value = f.operator.strip()
        query = query.where(
            or_(
                Launch.operator_name.icontains(value, autoescape=True),
                Launch.operator_id.icontains(value, autoescape=True),
            )
        )
    if f.created_from is not None:
        query = query.where(Import.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(Import.created_at < f.created_to)
    return query


def _summary(row: Import) -> dict[str, Any]:
    launch = row.launch
    return {
        "id": row.id,
        "state": row.state,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "patient_name": f"{launch.family_name} {launch.given_name}".strip(),
        "patient_id": launch.patient_id,
        "fiscal_code": launch.fiscal_code,
        "order_number": launch.order_number,
        "accession_number": launch.accession_number,
        "operator": launch.operator_name or launch.operator_id,
    }


def detail(ctx: Context, import_id: int, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The monitor, the operator's confirmation document, the audit log and the instances, in
    the reader's language."""
    launch = _launch_of(ctx, import_id)
    with ctx.sessions() as session:
        row = session.get_one(Import, import_id)
        document = views.document(ctx, row, lang)
        events = [audit.as_dict(e, lang) for e in audit.events_of_import(session, import_id)]
        instances = _instances(session, import_id, lang)
        retriable = _failed_phases(session, import_id) if _may_retry(row) else []
        state = row.state
    return {
        "id": import_id,
        "state": state,
        "summary": _summary_of(ctx, import_id),
        "progress": monitor.progress(ctx, import_id, launch, lang),
        "document": document,
        "events": events,
        "instances": instances,
        "retriable_phases": retriable,
        "abortable": lifecycle.cancellable(state),
        "recheckable": lifecycle.confirmable(state),
    }


def _summary_of(ctx: Context, import_id: int) -> dict[str, Any]:
    with ctx.sessions() as session:
        return _summary(session.get_one(Import, import_id))


def _instances(session: Session, import_id: int, lang: str) -> list[dict[str, Any]]:
    """Every file of the import and what the PACS answered to its C-STORE (ours said in ``lang``,
    the PACS's own words as it wrote them)."""
    query = select(ImportInstance).where(ImportInstance.import_id == import_id)
    return [
        {
            "study_instance_uid": i.study_instance_uid,
            "series_instance_uid": i.series_instance_uid,
            "sop_instance_uid": i.sop_instance_uid,
            "state": i.state,
            "status": i.status,
            "detail": messages.text(i.detail, lang) if i.detail in messages.CATALOGUE else i.detail,
        }
        for i in session.scalars(query.order_by(ImportInstance.id))
    ]


def _launch_of(ctx: Context, import_id: int) -> Launch:
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        if row is None:
            raise NotFoundError(f"import {import_id} not found")
        return row.launch


def _may_retry(row: Import) -> bool:
    return row.state == ImportState.FAILED and not row.files_deleted


def _failed_phases(session: Session, import_id: int) -> list[str]:
    query = select(PhaseRun.phase).where(
        PhaseRun.import_id == import_id, PhaseRun.state == PhaseState.FAILED
    )
    return list(session.scalars(query.order_by(PhaseRun.id)))


def retry(ctx: Context, import_id: int, actor: str) -> list[str]:
    """Start a failed import's failed phase again, with a full set of attempts.

    The import goes back to ``confirmed`` and its pipeline is enqueued: phases already
    completed are skipped, instances already stored are not sent again (their own state).
    """
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = session.get(Import, import_id)
        if row is None:
            raise NotFoundError(f"import {import_id} not found")
        phases = _failed_phases(session, import_id) if _may_retry(row) else []
        if not phases:
            raise ConflictError(f"import is {row.state}: no failed phase to retry")
        session.execute(
            update(PhaseRun)
            .where(PhaseRun.import_id == import_id, PhaseRun.phase.in_(phases))
            .values(
                state=PhaseState.PENDING,
                attempts_left=ctx.settings.jobs.attempts,
                ended_at=None,
                message_key="state.pending",
                message_params={},
            )
        )
        lifecycle.require(
            session, row, ImportState.CONFIRMED, error={}, finished_at=None, updated_at=now
        )
        audit.record(
            session, now, "support.retried", import_id=import_id, actor=actor, phases=phases
        )
    ctx.queue.enqueue(ledger.Task.RUN_PIPELINE, import_id)
    return phases


def abort(ctx: Context, import_id: int, actor: str) -> None:
    """The operator's cancel, by an administrator: files deleted, the RIS told if confirmed."""
    launch = _launch_of(ctx, import_id)
    with ctx.sessions() as session:
        state = session.get_one(Import, import_id).state
    confirmation.cancel(ctx, import_id, launch, actor=actor)  # 409 when it cannot be cancelled
    with ctx.sessions.begin() as session:
        audit.record(
            session, ctx.clock.now(), "support.aborted", import_id=import_id, actor=actor, was=state
        )


def recheck(ctx: Context, import_id: int, actor: str) -> None:
    """The operator's "Riprova controllo": analysis and duplicate check again."""
    launch = _launch_of(ctx, import_id)
    confirmation.recheck(ctx, import_id, launch, actor=actor)
    with ctx.sessions.begin() as session:
        audit.record(
            session, ctx.clock.now(), "support.rechecked", import_id=import_id, actor=actor
        )
