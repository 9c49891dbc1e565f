"""Invio ordine RIS: OMI^O23 telling the RIS the order's images are archived (or stopped).

Carries the order number, accession number, Study Instance UIDs and the instances archived,
marked EXTIMPORT so the order lands on no reading or billing worklist (hl7v2.messages).
A cancelled or failed import tells the RIS too, once, with the reason ("discontinued").
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from pacsbridge import audit
from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.errors import PeerError
from pacsbridge.hl7v2 import ArchivedStudy, OrderRef, build_order_archived, send
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy
from pacsbridge.imports.pipeline.base import Done, Job, Outcome, Skipped
from pacsbridge.imports.pipeline.hl7 import message_ids, ris_patient
from pacsbridge.messages import Said, render, said

log = logging.getLogger(__name__)


def run(job: Job) -> Outcome:
    endpoint = job.ctx.settings.ris.notify
    if not endpoint.enabled:
        return Skipped()
    _send(job.ctx, job.import_id, "N", None)
    return Done("done.notify")


def discontinued(ctx: Context, import_id: int, reason: Said) -> None:
    """Tell the RIS an import stopped; one attempt, its outcome audited (never raises).

    The reason is rendered in Italian here, where the HL7 message is built: the RIS reads the
    manual's words (docs/integration-ris.md); the audit keeps its key.
    """
    if not ctx.settings.ris.notify.enabled:
        return
    try:
        _send(ctx, import_id, "D", render(reason, "it"))
        outcome, detail = "ok", ""
    except PeerError as error:
        outcome, detail = "error", error.said()
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "ris.discontinued",
            import_id=import_id,
            outcome=outcome,
            message=detail,
            reason=reason,
        )


def discontinued_once(ctx: Context, import_id: int) -> None:
    """After a cancel of a confirmed import: the discontinuation, unless the RIS already had one."""
    with ctx.sessions() as session:
        told = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.import_id == import_id, AuditEvent.kind == "ris.discontinued")
        )
    if not told:
        discontinued(ctx, import_id, said("final.cancelled"))


def _send(ctx: Context, import_id: int, tag: str, reason: str | None) -> None:
    endpoint = ctx.settings.ris.notify
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        assert row is not None
        launch, studies = row.launch, _studies(session, import_id)
    if not studies:
        return  # nothing was analysed: the RIS order never had images to expect
    order = OrderRef(
        number=launch.order_number,
        accession_number=launch.accession_number,
        description=launch.order_description,
    )
    message = build_order_archived(
        message_ids(ctx, endpoint, import_id, tag),
        ris_patient(launch),
        order,
        studies,
        discontinued_reason=reason,
    )
    send(endpoint.host, endpoint.port, message, timeout=endpoint.timeout, peer="RIS (HL7)")


def _studies(session, import_id: int) -> list[ArchivedStudy]:  # noqa: ANN001
    stored = dict(
        session.execute(
            select(ImportInstance.study_instance_uid, func.count())
            .where(ImportInstance.import_id == import_id, ImportInstance.state == "stored")
            .group_by(ImportInstance.study_instance_uid)
        ).all()
    )
    rows = session.scalars(
        select(ImportStudy).where(
            ImportStudy.import_id == import_id, ImportStudy.selected.is_(True)
        )
    )
    return [
        ArchivedStudy(s.study_instance_uid, stored.get(s.study_instance_uid, 0), s.description)
        for s in rows
    ]
