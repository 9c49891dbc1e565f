"""``/healthz`` (alive), ``/readyz`` (ready to take work) and ``/metrics`` (Prometheus).

``/healthz`` and ``/readyz`` are unauthenticated (load balancers and orchestrators probe them)
and say nothing about patients or hosts. ``/metrics`` tells how busy the hospital is and which
peers fail: it answers only a configured bearer token or a client address in
``metrics.allowed_networks`` (loopback by default), else 404, so a scanner learns nothing about
it (docs/operations.md, "Who may scrape").
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pacsbridge import __version__
from pacsbridge.context import Context
from pacsbridge.errors import NotFoundError
from pacsbridge.operations import exposition
from pacsbridge.operations.readiness import CachedReadiness
from pacsbridge.web.deps import Ctx, bearer

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers HTTP: restart it when this fails, nothing more."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when every required check passes, else 503; the checks with their latencies."""
    answer = _readiness(request).get()
    return JSONResponse(answer.as_dict(), status_code=200 if answer.ready else 503)


@router.get("/metrics")
def metrics(request: Request, ctx: Ctx) -> Response:
    if not may_scrape(ctx, request):
        raise NotFoundError("metrics not allowed for this client")
    return Response(exposition.render(ctx), media_type=CONTENT_TYPE_LATEST)


def _readiness(request: Request) -> CachedReadiness:
    state = request.app.state
    if getattr(state, "readiness", None) is None:
        state.readiness = CachedReadiness(state.context)
    return state.readiness


def may_scrape(ctx: Context, request: Request) -> bool:
    """A configured token, or a client inside an allowed network."""
    settings = ctx.settings.metrics
    token = bearer(request)
    if token is not None:
        tokens = (t.get_secret_value() for t in settings.bearer_tokens)
        return any(hmac.compare_digest(token, t) for t in tokens)
    client = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in settings.allowed_networks)
