"""GET /imports/{id}/thumbnails/{series_uid}.png: one preview per series on the confirmation page.

The operator must see that a colonoscopy is not a chest X-ray before confirming. The image is
the series' representative file as the analysis recorded it (``analysis.studies[].series[]``),
rendered by ``media.thumbnails`` with its own windowing; anything unexpected (file already
deleted because the study is on the PACS, undecodable pixels) gives the placeholder instead of
an error, because a missing preview must never block the page.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from pacsbridge.imports import workspace
from pacsbridge.imports.scope import load_import
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.session import Session

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
SIZE = 128


@router.get("/imports/{import_id}/thumbnails/{series_uid}.png", name="thumbnail")
def thumbnail(import_id: int, series_uid: str, ctx: Ctx, session: Session) -> Response:
    with ctx.sessions() as db:
        row = load_import(db, import_id, session.launch)
        relative = representative(row.analysis or {}, series_uid)
    root = workspace.files_dir(ctx.data_dir, import_id)
    return Response(
        _png(root, relative),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def representative(analysis: dict[str, Any], series_uid: str) -> str | None:
    for study in analysis.get("studies", {}).values():
        for series in study.get("series", []):
            if series.get("series_instance_uid") == series_uid:
                return series.get("representative")
    return None


def _png(root: Path, relative: str | None) -> bytes:
    # Imported here: media is a leaf package that loads pydicom's pixel handlers on import.
    from pacsbridge.media.thumbnails import placeholder_png, render_thumbnail

    path = _inside(root, relative)
    if path is None or not path.is_file():
        return placeholder_png()
    try:
        return render_thumbnail(path, size=SIZE)
    except Exception:  # a preview never breaks the page; media already logs the reason
        log.warning("thumbnail failed for %s", path.name)
        return placeholder_png()


def _inside(root: Path, relative: str | None) -> Path | None:
    """The file under ``root``; None for a path that would leave it."""
    if not relative:
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) else None
