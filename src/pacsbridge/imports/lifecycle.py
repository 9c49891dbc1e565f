"""Creating an import under a launch (the "Id per assistenza" is its id)."""

from __future__ import annotations

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.imports.models import Import, Launch


def create(ctx: Context, launch: Launch) -> Import:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = Import(
            launch_id=launch.id,
            patient_id=launch.patient_id,
            order_number=launch.order_number,
            state="created",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            now,
            "import.created",
            import_id=row.id,
            actor=launch.operator_name or launch.operator_id,
        )
    return row
