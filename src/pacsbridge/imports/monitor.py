"""The progress read model: what the monitor page, ``/progress`` and scripts see (manual §5).

Phases in pipeline order with state, times, attempts left and the message (its key and
parameters, and its words in the reader's language ``lang``: docs/errors.md); the final
state ("Fine procedura" / "Risultato Finale"); the support id; the studies being processed,
each with the instances the PACS already holds (``stored_count``). A cancel during the send
says how many instances had already reached the PACS: they stay there (docs/lifecycle.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pacsbridge.context import Context
from pacsbridge.errors import answer
from pacsbridge.imports.lifecycle import ImportState, PhaseState
from pacsbridge.imports.models import Import, ImportInstance, Launch, PhaseRun
from pacsbridge.imports.pipeline import PHASES
from pacsbridge.imports.scope import load_import
from pacsbridge.messages import DEFAULT_LANGUAGE, Said, render, said, text

FINAL_KEYS = {
    ImportState.COMPLETED: "final.completed",
    ImportState.FAILED: "final.failed",
    ImportState.CANCELLED: "final.cancelled",
}


def progress(
    ctx: Context, import_id: int, launch: Launch, lang: str = DEFAULT_LANGUAGE
) -> dict[str, Any]:
    with ctx.sessions() as session:
        row = load_import(session, import_id, launch)
        runs = {
            r.phase: r
            for r in session.scalars(select(PhaseRun).where(PhaseRun.import_id == import_id))
        }
        return _progress(ctx, row, runs, _stored(session, import_id), lang)


def _stored(session, import_id: int) -> dict[str, int]:  # noqa: ANN001
    """Instances the PACS acknowledged, per study."""
    query = (
        select(ImportInstance.study_instance_uid, func.count())
        .where(ImportInstance.import_id == import_id, ImportInstance.state == "stored")
        .group_by(ImportInstance.study_instance_uid)
    )
    return {uid: count for uid, count in session.execute(query)}


def _final(row: Import, stored: dict[str, int], lang: str) -> dict[str, Any]:
    reason = answer(row.error, lang)["message"] if row.error else ""
    key = FINAL_KEYS.get(row.state, "final.running")
    sent = sum(stored.values())
    if row.state == ImportState.CANCELLED and sent:
        total = sum(s.instance_count for s in row.studies if s.selected)
        message = text("final.cancelled_sent", lang, stored=sent, total=total)
    else:
        message = text(key, lang, reason=reason, id=row.id)
    return {"state": row.state, "message": message, "stored_count": sent}


def _progress(
    ctx: Context, row: Import, runs: dict[str, PhaseRun], stored: dict[str, int], lang: str
) -> dict[str, Any]:
    return {
        "id": row.id,
        "support_id": row.id,
        "state": row.state,
        "updated_at": row.updated_at.isoformat(),
        "phases": [_phase(name, runs.get(name), ctx, lang) for name, _ in PHASES],
        "final": _final(row, stored, lang),
        "studies": [
            {
                "study_instance_uid": s.study_instance_uid,
                "description": s.description,
                "accession_number": (
                    row.analysis.get("studies", {})
                    .get(s.study_instance_uid, {})
                    .get("accession_number", "")
                ),
                "instance_count": s.instance_count,
                "stored_count": stored.get(s.study_instance_uid, 0),
            }
            for s in row.studies
            if s.selected
        ],
        "error": answer(row.error, lang) if row.error else None,
    }


def _phase(name: str, run: PhaseRun | None, ctx: Context, lang: str) -> dict[str, Any]:
    label = text(f"phase.{name}", lang)
    if run is None:
        return {
            "phase": name,
            "label": label,
            "state": PhaseState.PENDING,
            "attempts_left": ctx.settings.jobs.attempts,
            "started_at": None,
            "ended_at": None,
            **_message(said("state.pending"), lang),
        }
    return {
        "phase": name,
        "label": label,
        "state": run.state,
        "attempts_left": run.attempts_left,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        **_message(_said(run), lang),
    }


def _said(run: PhaseRun) -> Said:
    """What the row says; a row not started yet says nothing: "Da Elaborare"."""
    if not run.message_key:
        return said("state.pending")
    return {"key": run.message_key, "params": run.message_params or {}}


def _message(message: Said, lang: str) -> dict[str, Any]:
    """The phase's message: key and parameters, and its words in ``lang``."""
    return {
        "message": render(message, lang),
        "message_key": message["key"],
        "message_params": message["params"],
    }
