"""Request dependencies: the run-time context, the launch behind a token, the RIS/FSE keys."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from pacsbridge.context import Context
from pacsbridge.errors import ApiKeyError, CsrfError
from pacsbridge.imports import launch as launches
from pacsbridge.imports.models import Launch
from pacsbridge.web import csrf


def get_context(request: Request) -> Context:
    return request.app.state.context


Ctx = Annotated[Context, Depends(get_context)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check_key(value: str | None, keys: list) -> None:  # noqa: ANN001 - list[SecretStr]
    if not value or not any(hmac.compare_digest(value, k.get_secret_value()) for k in keys):
        raise ApiKeyError("missing or wrong API key")


def ris_key(request: Request, ctx: Ctx) -> None:
    _check_key(bearer(request), ctx.settings.ris.api_keys)


def fse_key(request: Request, ctx: Ctx) -> None:
    _check_key(bearer(request), ctx.settings.fse.api_keys)


COOKIE = "pacsbridge_token"


def launch_from_token(request: Request, ctx: Ctx) -> Launch:
    """The API takes the token as Bearer; pages send their HttpOnly cookie plus a CSRF header."""
    token = bearer(request)
    if token is None:
        token = request.cookies.get(COOKIE)
        unsafe = request.method not in csrf.SAFE_METHODS
        if token and unsafe and not csrf.valid(token, request.headers.get(csrf.HEADER)):
            raise CsrfError("missing or wrong CSRF token")
    with ctx.sessions() as session:
        return launches.resolve(ctx, session, token)


RisKey = Annotated[None, Depends(ris_key)]
FseKey = Annotated[None, Depends(fse_key)]
TokenLaunch = Annotated[Launch, Depends(launch_from_token)]
