"""POST /api/v1/launch: the RIS opens an import for one patient and one order.

The API key is checked before the body is read (``deps.json_body``): an unauthenticated caller
cannot make the server read, let alone parse, anything. A refused launch is audited.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError

from pacsbridge.errors import PacsbridgeError
from pacsbridge.imports import launch as launches
from pacsbridge.imports import refusals
from pacsbridge.imports.schemas import LaunchAnswer, LaunchRequest
from pacsbridge.web.deps import Ctx, json_body, ris_key

router = APIRouter(prefix="/api/v1", tags=["launch"])


def _body_schema() -> dict[str, Any]:
    """The request body for the OpenAPI schema (the route reads it itself, after the key)."""
    schema = LaunchRequest.model_json_schema()
    schema["$id"] = "urn:pacsbridge:launch-request"  # its "#/$defs/..." resolve inside it
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"content": content, "required": True}}


@router.post("/launch", status_code=201, response_model=LaunchAnswer, openapi_extra=_body_schema())
async def launch(request: Request, ctx: Ctx) -> LaunchAnswer:
    """Issue a token bound to this patient and order; `url` opens the import page."""
    try:
        ris_key(request, ctx)
        body = await json_body(request, LaunchRequest)
    except (PacsbridgeError, RequestValidationError) as error:
        await anyio.to_thread.run_sync(_refused, ctx, request, error)
        raise
    actor = body.operator.name or body.operator.id
    return await anyio.to_thread.run_sync(lambda: launches.launch(ctx, body, actor=actor))


def _refused(ctx: Ctx, request: Request, error: Exception) -> None:
    if isinstance(error, RequestValidationError):
        fields = [".".join(str(p) for p in e["loc"][1:]) for e in error.errors()]
        code = "invalid_input"
    else:
        fields, code = [], getattr(error, "code", "invalid_input")
    client = request.client.host if request.client else ""
    refusals.launch_refused(ctx, code, fields, client)
