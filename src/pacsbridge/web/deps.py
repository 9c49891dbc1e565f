"""Request dependencies: the run-time context, the launch behind a token, the RIS/FSE keys,
ids within range, and a JSON body read only after authentication."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from pacsbridge import logs
from pacsbridge.context import Context
from pacsbridge.errors import ApiKeyError, CsrfError, NotFoundError
from pacsbridge.imports import launch as launches
from pacsbridge.imports.models import Launch
from pacsbridge.settings import NamedApiKey
from pacsbridge.web import csrf
from pacsbridge.web.language import request_language


def get_context(request: Request) -> Context:
    return request.app.state.context


Ctx = Annotated[Context, Depends(get_context)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check_key(value: str | None, keys: list, prefix: str = "key") -> str:  # noqa: ANN001
    """The name of the key ``value`` is (a ``NamedApiKey``'s, else ``prefix-N``); raises when
    it is none. Every key is compared, in constant time, so timing tells nothing."""
    found = ""
    for index, key in enumerate(keys):
        secret = key.key if isinstance(key, NamedApiKey) else key
        if value and hmac.compare_digest(value, secret.get_secret_value()) and not found:
            found = key.name if isinstance(key, NamedApiKey) else f"{prefix}-{index + 1}"
    if not found:
        raise ApiKeyError("missing or wrong API key")
    return found


def ris_key(request: Request, ctx: Ctx) -> None:
    _check_key(bearer(request), ctx.settings.ris.api_keys)


def fse_key(request: Request, ctx: Ctx) -> str:
    """The FSE client's name: downloads are audited with it (docs/atna.md)."""
    return _check_key(bearer(request), ctx.settings.fse.api_keys, "fse-key")


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


M = TypeVar("M", bound=BaseModel)

#: Row ids are 64-bit signed integers in SQLite and PostgreSQL alike.
MAX_ROW_ID = 2**63 - 1


def ids_in_range(request: Request) -> None:
    """An integer path parameter no database row can have is a 404, not a driver overflow."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    for field in _path_params(dependant):
        if field.field_info.annotation is int:
            _check_id(field.name, request.path_params.get(field.name))
            _bind_log_id(field.name, request.path_params.get(field.name))


def _path_params(dependant: Any) -> Iterator[Any]:  # fastapi Dependant → ModelField
    yield from dependant.path_params
    for sub in dependant.dependencies:
        yield from _path_params(sub)


def _bind_log_id(name: str, raw: str | None) -> None:
    """The request's log records carry the import or retrieval it is about (docs/logging.md)."""
    if name in ("import_id", "retrieval_id") and raw and raw.isdigit():
        logs.bind(**{name: int(raw)})


def _check_id(name: str, raw: str | None) -> None:
    try:
        value = int(raw or "0")
    except ValueError:
        return  # not a number: FastAPI's validation names the field (422)
    if abs(value) > MAX_ROW_ID:
        raise NotFoundError(f"{name} out of range")


async def json_body(request: Request, model: type[M]) -> M:
    """Read and validate the body once the route's dependencies (the key check) have passed.

    FastAPI reads a declared body before any dependency runs; routes that must authenticate
    first take the body this way. The size is bounded by web/limits.py.
    """
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        raise RequestValidationError(errors) from None


RisKey = Annotated[None, Depends(ris_key)]
FseKey = Annotated[str, Depends(fse_key)]
TokenLaunch = Annotated[Launch, Depends(launch_from_token)]
#: The reader's language (Accept-Language, else ``web.language``): API messages are said in it.
Lang = Annotated[str, Depends(request_language)]
