"""The progress read model: what the monitor page, ``/progress`` and scripts see (seed 000 §5).

Phases in pipeline order with state, times, attempts left and the Italian message; the final
state ("Fine procedura" / "Risultato Finale"); the support id; the studies being processed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pacsbridge.context import Context
from pacsbridge.imports.models import Import, Launch, PhaseRun
from pacsbridge.imports.pipeline import PHASES
from pacsbridge.imports.scope import load_import
from pacsbridge.messages import text

FINAL_KEYS = {"completed": "final.completed", "failed": "final.failed"}


def progress(ctx: Context, import_id: int, launch: Launch) -> dict[str, Any]:
    with ctx.sessions() as session:
        row = load_import(session, import_id, launch)
        runs = {
            r.phase: r
            for r in session.scalars(select(PhaseRun).where(PhaseRun.import_id == import_id))
        }
        return _progress(ctx, row, runs)


def _progress(ctx: Context, row: Import, runs: dict[str, PhaseRun]) -> dict[str, Any]:
    reason = (row.error or {}).get("message", "")
    final_key = FINAL_KEYS.get(row.state, "final.running")
    return {
        "id": row.id,
        "support_id": row.id,
        "state": row.state,
        "updated_at": row.updated_at.isoformat(),
        "phases": [_phase(name, runs.get(name), ctx) for name, _ in PHASES],
        "final": {"state": row.state, "message": text(final_key, reason=reason, id=row.id)},
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
            }
            for s in row.studies
            if s.selected
        ],
        "error": row.error or None,
    }


def _phase(name: str, run: PhaseRun | None, ctx: Context) -> dict[str, Any]:
    if run is None:
        attempts = ctx.settings.jobs.attempts
        return {
            "phase": name,
            "label": text(f"phase.{name}"),
            "state": "pending",
            "attempts_left": attempts,
            "started_at": None,
            "ended_at": None,
            "message": text("state.pending"),
        }
    return {
        "phase": name,
        "label": text(f"phase.{name}"),
        "state": run.state,
        "attempts_left": run.attempts_left,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "message": run.message,
    }
