"""/api/v1/retrievals: the FSE integration API (docs/integration-fse.md), with an FSE API key.

Thin: parse, call the retrieval domain, shape. ``POST`` answers 202 at once (or with the
final state when the study is cached); ``GET .../package`` is a file response, so Range
requests resume an interrupted download.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from pacsbridge.retrievals import package, request, views
from pacsbridge.retrievals.schemas import RetrievalRequest
from pacsbridge.web.deps import Ctx, FseKey, Lang

router = APIRouter(prefix="/api/v1/retrievals", tags=["retrievals"])


@router.post("", status_code=202)
def create_retrieval(body: RetrievalRequest, ctx: Ctx, _key: FseKey) -> JSONResponse:
    """Find the studies of these accession numbers on the source and bring them in."""
    row = request.accept(ctx, body)
    location = f"/api/v1/retrievals/{row.id}"
    return JSONResponse(
        {"id": row.id, "state": row.state}, status_code=202, headers={"Location": location}
    )


@router.get("/{retrieval_id}")
def get_retrieval(retrieval_id: int, ctx: Ctx, _key: FseKey, lang: Lang) -> dict[str, Any]:
    """State, counts, expiry, errors with their DICOM status, and the studies' tree."""
    return views.document(ctx, retrieval_id, lang)


@router.get("/{retrieval_id}/metadata")
def get_metadata(retrieval_id: int, ctx: Ctx, _key: FseKey) -> dict[str, Any]:
    """Find Study Metadata (FSE spec §3.1) in the DICOM JSON model."""
    return views.metadata(ctx, retrieval_id)


@router.get(
    "/{retrieval_id}/package",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, 206: {"description": "Range"}},
)
async def get_package(retrieval_id: int, http: Request, ctx: Ctx, client: FseKey) -> FileResponse:
    """The zip for the patient: DICOMDIR, README.TXT, DICOM/ (resumable with Range)."""
    path = await anyio.to_thread.run_sync(package.build, ctx, retrieval_id)
    byte_range = http.headers.get("range")
    who = package.Downloader(client, http.client.host if http.client else "")
    await anyio.to_thread.run_sync(
        package.record_download, ctx, retrieval_id, path, byte_range, who
    )
    return FileResponse(
        path, media_type="application/zip", filename=package.download_name(retrieval_id)
    )
