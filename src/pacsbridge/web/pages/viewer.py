"""The image viewer: OHIF for a viewer link, and the operator's "Visualizza immagini".

``/viewer/{token}`` checks the link (an Italian page when expired or not ours), audits the
viewing (``images.viewed``) and answers the bundled OHIF Viewer (web/viewer_assets.py),
configured for this link's DICOMweb root ``/dicomweb/t/{token}``; nothing is fetched from
elsewhere. ``/imports/{id}/viewer`` opens the same viewer on an import's uploaded media with
the operator's page session: a token for that import only (imports/viewing.py), then the
viewer link.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from pacsbridge.dicomweb import tokens
from pacsbridge.imports import viewing as import_viewing
from pacsbridge.retrievals import viewing as retrieval_viewing
from pacsbridge.web import viewer_assets
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.session import Session

router = APIRouter(include_in_schema=False)


@router.get("/imports/{import_id}/viewer", name="import_viewer")
def import_viewer(import_id: int, request: Request, ctx: Ctx, session: Session) -> Response:
    """The operator's preview of this import (404 outside the session's patient and order)."""
    token = import_viewing.open_preview(ctx, import_id, session.launch)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/viewer/{token}", 303)


@router.get("/viewer/{token}", name="viewer")
def viewer(token: str, request: Request, ctx: Ctx) -> Response:
    """OHIF on this link's studies; an Italian error page for a refused link."""
    scope = tokens.verify(retrieval_viewing.secret(ctx), token, ctx.clock.now())
    if scope.kind == "retrieval":
        retrieval_viewing.record(
            ctx,
            scope.id,
            "viewer-link",
            via="viewer",
            link_expires_at=tokens.expiry_of(token).isoformat(),
        )
    return viewer_assets.page(request, ctx, token, scope)


@router.get("/viewer/{token}/{rest:path}", name="viewer_route")
def viewer_route(token: str, rest: str, request: Request, ctx: Ctx) -> Response:
    """OHIF's own client-side routes (``/viewer/{token}/viewer?...``) reload the same page."""
    scope = tokens.verify(retrieval_viewing.secret(ctx), token, ctx.clock.now())
    if rest == "app-config.js":
        return viewer_assets.config(request, ctx, token)
    return viewer_assets.page(request, ctx, token, scope)
