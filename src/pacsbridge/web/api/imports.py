"""/api/v1/imports: create, upload (resumable), read, confirm, cancel, history, events.

Authenticated by the launch token (``Authorization: Bearer <token>``); every import outside the
token's patient and order answers 404.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pacsbridge import audit
from pacsbridge.errors import PacsbridgeError
from pacsbridge.imports import confirmation, lifecycle, monitor, refusals, upload, views
from pacsbridge.imports.schemas import ConfirmRequest
from pacsbridge.imports.scope import load_import
from pacsbridge.web.deps import Ctx, Lang, TokenLaunch

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])


@router.post("", status_code=201)
def create_import(ctx: Ctx, launch: TokenLaunch, lang: Lang) -> dict[str, Any]:
    """Create an import; its id is the "Id per assistenza"."""
    row = lifecycle.create(ctx, launch)
    return views.import_document(ctx, row.id, launch, lang)


@router.get("")
def list_imports(ctx: Ctx, launch: TokenLaunch) -> dict[str, Any]:
    """Previous imports of the token's patient and order (those with audit events)."""
    return {"imports": views.history(ctx, launch)}


@router.get("/{import_id}")
def get_import(import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang) -> dict[str, Any]:
    return views.import_document(ctx, import_id, launch, lang)


@router.put(
    "/{import_id}/archive",
    openapi_extra={
        "requestBody": {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def put_archive(
    import_id: int, request: Request, ctx: Ctx, launch: TokenLaunch
) -> dict[str, Any]:
    """Receive the zip: whole body, or parts with ``Content-Range: bytes a-b/total``.

    A part at the wrong offset answers 409 with ``received_bytes``; streamed to disk.
    """
    length = request.headers.get("content-length")
    try:
        part = upload.parse_range(request.headers.get("content-range"), _int(length))
        return await upload.receive(ctx, import_id, launch, part, request.stream())
    except PacsbridgeError as error:  # offset, size (web/limits.py), state: audited
        await anyio.to_thread.run_sync(refusals.upload_refused, ctx, import_id, launch, error)
        raise


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@router.get("/{import_id}/archive")
def get_archive_status(import_id: int, ctx: Ctx, launch: TokenLaunch) -> dict[str, Any]:
    """How many bytes the server holds: where an interrupted upload resumes."""
    return upload.status(ctx, import_id, launch)


@router.post("/{import_id}/confirm", status_code=202)
async def confirm(
    import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang, body: ConfirmRequest | None = None
) -> dict[str, Any]:
    """Confirm the selected studies (default: all not already on the PACS), with the media's
    documents ticked (``document_keys``) wrapped into the first of them.

    A media patient that is not a match needs ``identity_acknowledged: true`` (else 409).
    """
    uids = body.study_instance_uids if body else None
    acknowledged = bool(body and body.identity_acknowledged)
    keys = body.document_keys if body else []
    await anyio.to_thread.run_sync(
        confirmation.confirm, ctx, import_id, launch, uids, acknowledged, keys
    )
    return views.import_document(ctx, import_id, launch, lang)


@router.post("/{import_id}/recheck", status_code=202)
def recheck(import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang) -> dict[str, Any]:
    """Repeat the analysis and the PACS duplicate check (e.g. the PACS was unreachable)."""
    confirmation.recheck(ctx, import_id, launch)
    return views.import_document(ctx, import_id, launch, lang)


@router.post("/{import_id}/cancel")
def cancel(import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang) -> dict[str, Any]:
    """Cancel, in any state before the end (processing too): the files are deleted."""
    confirmation.cancel(ctx, import_id, launch)
    return views.import_document(ctx, import_id, launch, lang)


@router.get("/{import_id}/events")
def events(import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang) -> JSONResponse:
    """The import's audit log, oldest first."""
    with ctx.sessions() as session:
        load_import(session, import_id, launch)
        rows = audit.events_of_import(session, import_id)
        return JSONResponse({"events": [audit.as_dict(e, lang) for e in rows]})


@router.get("/{import_id}/progress")
def progress(import_id: int, ctx: Ctx, launch: TokenLaunch, lang: Lang) -> dict[str, Any]:
    """The pipeline phases: state, times, attempts left, messages (the monitor page)."""
    return monitor.progress(ctx, import_id, launch, lang)
