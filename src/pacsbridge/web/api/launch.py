"""POST /api/v1/launch: the RIS opens an import for one patient and one order (seed 000 §2)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pacsbridge.imports import launch as launches
from pacsbridge.imports.schemas import LaunchAnswer, LaunchRequest
from pacsbridge.web.deps import Ctx, RisKey

router = APIRouter(prefix="/api/v1", tags=["launch"])


@router.post("/launch", status_code=201, response_model=LaunchAnswer)
def launch(body: LaunchRequest, ctx: Ctx, _key: RisKey, request: Request) -> LaunchAnswer:
    """Issue a token bound to this patient and order; `url` opens the import page."""
    return launches.launch(ctx, body, actor=body.operator.name or body.operator.id)
