"""GET /imports/{id}/thumbnails/{series_key}.png: one preview per series on the confirmation page.

The operator must see that a colonoscopy is not a chest X-ray before confirming. The image is
the series' representative file as the analysis recorded it (``analysis.studies[].series[]``),
rendered by ``media.thumbnails`` with its own windowing and under the pixel budget
``imports.thumbnail_max_pixels``; anything unexpected (file already deleted because the study
is on the PACS, undecodable pixels) gives the placeholder instead of an error, because a
missing preview must never block the page.

A series is addressed by the import id and a key of ours (:func:`pacsbridge.web.pages.view.
series_key`, sixteen hex digits), never by its Series Instance UID: a UID from a medium may be
shaped like a path or a URL, and the page must not paste it into an address. The rendered PNG
is cached in the import's folder under the same key, so it goes when the import's files go.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response

from pacsbridge.imports import workspace
from pacsbridge.imports.scope import load_import
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.session import Session
from pacsbridge.web.pages.view import SERIES_KEY_PATTERN, series_key

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
SIZE = 128
CACHE_FOLDER = "thumbnails"

SeriesKey = Annotated[str, PathParam(pattern=SERIES_KEY_PATTERN)]


@router.get("/imports/{import_id}/thumbnails/{series_key}.png", name="thumbnail")
def thumbnail(import_id: int, series_key: SeriesKey, ctx: Ctx, session: Session) -> Response:
    with ctx.sessions() as db:
        row = load_import(db, import_id, session.launch)
        relative = representative(row.analysis or {}, series_key)
    budget = ctx.settings.imports.thumbnail_max_pixels
    return Response(
        _cached_png(ctx.data_dir, import_id, series_key, relative, budget),
        media_type="image/png",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def representative(analysis: dict[str, Any], key: str) -> str | None:
    """The representative file of the series whose key is ``key``; None when none has it."""
    for study in analysis.get("studies", {}).values():
        for series in study.get("series", []):
            if (
                series_key(study.get("study_instance_uid"), series.get("series_instance_uid"))
                == key
            ):
                return series.get("representative")
    return None


def _cached_png(
    data_dir: Path, import_id: int, key: str, relative: str | None, budget: int
) -> bytes:
    """The cached preview, else a fresh one, kept when its file was there to render."""
    root = workspace.files_dir(data_dir, import_id)
    cache = workspace.folder(data_dir, import_id) / CACHE_FOLDER / f"{key}.png"
    if relative is not None and cache.is_file():
        return cache.read_bytes()
    path = _inside(root, relative)
    if path is None or not path.is_file():
        return _placeholder()
    try:
        png = _render(path, budget)
    except Exception:  # a preview never breaks the page; media already logs the reason
        return _placeholder()
    _store(cache, png)
    return png


def _render(path: Path, budget: int) -> bytes:
    # Imported here: media is a leaf package that loads pydicom's pixel handlers on import.
    from pacsbridge.media.thumbnails import render_thumbnail

    return render_thumbnail(path, size=SIZE, max_pixels=budget)


def _placeholder() -> bytes:
    from pacsbridge.media.thumbnails import placeholder_png

    return placeholder_png(SIZE)


def _store(cache: Path, png: bytes) -> None:
    """Written whole or not at all (two requests may render at once); a full disk or a folder
    deleted meanwhile (cancel) only costs the cache."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=cache.parent, prefix=cache.stem, suffix=".part")
    except OSError as error:
        log.warning("thumbnail not cached: %s", type(error).__name__)
        return
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(png)
        os.replace(temporary, cache)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        log.warning("thumbnail not cached: %s", type(error).__name__)


def _inside(root: Path, relative: str | None) -> Path | None:
    """The file under ``root``; None for a path that would leave it."""
    if not relative:
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) else None
