"""Audit of refused input: a launch the RIS API refused, an upload part the server refused.

A refusal names its reason (the error code) and, for a launch, the names of the bad fields;
never the values sent, since the caller may not be who it claims. An upload refusal is written
only into the log of an import the token may see, so a guessed id cannot write into another
patient's log.
"""

from __future__ import annotations

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import AuthError, CsrfError, NotFoundError, PacsbridgeError
from pacsbridge.imports.models import Import, Launch
from pacsbridge.imports.scope import in_scope

#: Refusals about who is asking or what exists: nothing to write into an import's log.
NOT_AUDITED_ON_IMPORT = (AuthError, CsrfError, NotFoundError)


def launch_refused(ctx: Context, code: str, fields: list[str], client: str) -> None:
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "launch.refused",
            actor="ris",
            outcome="refused",
            code=code,
            fields=fields[:20],
            client=client,
        )


def upload_refused(ctx: Context, import_id: int, launch: Launch, error: PacsbridgeError) -> None:
    if isinstance(error, NOT_AUDITED_ON_IMPORT):
        return
    with ctx.sessions.begin() as session:
        if not in_scope(session.get(Import, import_id), launch):
            return
        audit.record(
            session,
            ctx.clock.now(),
            "upload.refused",
            import_id=import_id,
            actor=launch.operator_name or launch.operator_id,
            outcome="refused",
            code=error.code,
            message=error.detail[:200],
        )
