"""The media's documents on the confirmation page: a preview of each (imports/documents.py).

``GET /imports/{id}/documents/{key}.png`` is a small picture of a scanned page (the grey
placeholder for anything else, so a broken file never breaks the page);
``GET /imports/{id}/documents/{key}.pdf`` is the report itself, for the browser's own viewer in
a new tab. A document is addressed by the import id and its key (16 hex digits of ours), never
by its name on the medium; the answer's name is ours too.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response

from pacsbridge.errors import NotFoundError
from pacsbridge.imports import documents, workspace
from pacsbridge.imports.scope import load_import
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.session import Session

router = APIRouter(include_in_schema=False)
SIZE = 160
DocumentKey = Annotated[str, PathParam(pattern=documents.KEY_PATTERN)]
#: The PDF is shown by the browser's viewer and may not run or load anything of its own.
PDF_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@router.get("/imports/{import_id}/documents/{key}.png", name="document_preview")
def preview(import_id: int, key: DocumentKey, ctx: Ctx, session: Session) -> Response:
    document, path = _document(ctx, session, import_id, key)
    png = None
    if document["kind"] == "image" and not document["problem"]:
        png = _picture(path, ctx.settings.imports.thumbnail_max_pixels)
    return Response(png or _placeholder(), media_type="image/png")


@router.get("/imports/{import_id}/documents/{key}.pdf", name="document_pdf")
def pdf(import_id: int, key: DocumentKey, ctx: Ctx, session: Session) -> Response:
    document, path = _document(ctx, session, import_id, key)
    if document["kind"] != "pdf" or document["problem"] or path is None:
        raise NotFoundError("no such document")
    return Response(
        path.read_bytes(),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="documento-{import_id}-{key}.pdf"',
            "Content-Security-Policy": PDF_CSP,
        },
    )


def _document(
    ctx: Ctx, session: Any, import_id: int, key: str
) -> tuple[dict[str, Any], Path | None]:
    with ctx.sessions() as db:
        row = load_import(db, import_id, session.launch)
        found = [d for d in (row.analysis or {}).get("documents", []) if d.get("key") == key]
    if not found:
        raise NotFoundError("no such document")
    root = workspace.files_dir(ctx.data_dir, import_id).resolve()
    path = (root / found[0]["path"]).resolve()
    inside = path.is_relative_to(root) and path.is_file()
    return found[0], path if inside else None


def _picture(path: Path | None, budget: int) -> bytes | None:
    from PIL import Image

    if path is None:
        return None
    try:
        with Image.open(path) as image:
            if image.width * image.height > budget:
                return None
            image.thumbnail((SIZE, SIZE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "PNG")
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _placeholder() -> bytes:
    from pacsbridge.media.thumbnails import placeholder_png

    return placeholder_png(SIZE)
