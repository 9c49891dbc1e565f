"""/dicomweb: read-only DICOMweb (PS3.18) for the viewer links (docs/integration-fse.md).

Mounted twice: ``/dicomweb/t/{token}/...`` carries the token in the link itself (what OHIF
and the FSE web app use), ``/dicomweb/...`` takes it as ``Authorization: Bearer``. The token
names one scope (a retrieval, or an import for the operator's preview); the scope's domain
gives the catalogue, and a UID outside it is a 404 like one that does not exist. A refused
token is a 401 (``viewer_link_invalid`` / ``viewer_link_expired``). Bodies are streamed.

Thin: parse, check, call ``pacsbridge.dicomweb``, shape.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydicom import Dataset

from pacsbridge import uids
from pacsbridge.context import Context
from pacsbridge.dicomweb import frames, metadata, multipart, negotiation, qido, rendered, tokens
from pacsbridge.dicomweb.catalogue import Catalogue, Instance, header
from pacsbridge.errors import NotFoundError
from pacsbridge.imports import viewing as import_viewing
from pacsbridge.retrievals import viewing as retrieval_viewing
from pacsbridge.web.deps import Ctx, bearer

router = APIRouter(tags=["dicomweb"])
JSON = "application/dicom+json"
#: A catalogue is read again after this many seconds (a viewer sends hundreds of requests).
CATALOGUE_SECONDS = 10
#: DICOMweb use of one link is audited at most once per this period and process.
AUDIT_EVERY = timedelta(hours=1)
_lock = threading.Lock()


@dataclass(frozen=True)
class Viewing:
    """One request's scope: what its token opens, and where its resources live."""

    scope: tokens.Scope
    catalogue: Catalogue
    root: str

    def instance_url(self, instance: Instance) -> str:
        return (
            f"{self.root}/studies/{instance.study}/series/{instance.series}"
            f"/instances/{instance.sop}"
        )


def viewing(request: Request, ctx: Context) -> Viewing:
    """The token's scope (401 when refused) and its catalogue (404 when nothing to show)."""
    token = request.path_params.get("token") or bearer(request)
    scope = tokens.verify(retrieval_viewing.secret(ctx), token, ctx.clock.now())
    _audit_once(request, ctx, scope, token or "")
    path = request.url.path
    root = ctx.settings.public_url + path[: path.index("/studies")] if "/studies" in path else ""
    return Viewing(scope, _catalogue(request, ctx, scope), root)


def _catalogue(request: Request, ctx: Context, scope: tokens.Scope) -> Catalogue:
    cached: dict[tokens.Scope, tuple[float, Catalogue]] = _state(request, "dicomweb_catalogues")
    now = time.monotonic()
    with _lock:
        hit = cached.get(scope)
    if hit is not None and now - hit[0] < CATALOGUE_SECONDS:
        return hit[1]
    if scope.kind == "retrieval":
        found = retrieval_viewing.catalogue(ctx, scope.id)
    else:
        found = import_viewing.catalogue(ctx, scope.id)
    with _lock:
        cached[scope] = (now, found)
    return found


def _audit_once(request: Request, ctx: Context, scope: tokens.Scope, token: str) -> None:
    seen: dict[str, Any] = _state(request, "dicomweb_audited")
    key = hashlib.sha256(token.encode()).hexdigest()
    now = ctx.clock.now()
    with _lock:
        last = seen.get(key)
        if last is not None and now - last < AUDIT_EVERY:
            return
        seen[key] = now
    details = {"via": "dicomweb", "link_expires_at": tokens.expiry_of(token).isoformat()}
    if scope.kind == "retrieval":
        retrieval_viewing.record(ctx, scope.id, "viewer-link", **details)
    else:
        import_viewing.record(ctx, scope.id, "operator-preview", **details)


def _state(request: Request, name: str) -> dict[Any, Any]:
    state = request.app.state
    with _lock:
        if not hasattr(state, name):
            setattr(state, name, {})
        return getattr(state, name)


def _uid(value: str) -> str:
    """A UID from the URL is compared with our rows only; one off the grammar is a 404."""
    if not uids.is_valid(value):
        raise NotFoundError("not a UID")
    return value


def _instance(seen: Viewing, study: str, series: str, sop: str) -> Instance:
    """The one instance the path names, within the viewing's scope (404 otherwise)."""
    return seen.catalogue.one(_uid(study), _uid(series), _uid(sop))


def _pixels(instance: Instance) -> frames.PixelLocation:
    """Where the instance's frames are; 404 for an instance without pixel data."""
    location = frames.locate(instance.path)
    if location is None:
        raise NotFoundError("this instance has no pixel data")
    return location


# --- QIDO-RS ---------------------------------------------------------------------------------


def _search_answer(results: list[Dataset]) -> JSONResponse:
    body = [ds.to_json_dict() for ds in results]
    return JSONResponse(body, media_type=JSON)


@router.get("/studies")
def search_studies(request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _search_answer(
        qido.studies(seen.catalogue, qido.parse(request.query_params.multi_items()))
    )


@router.get("/studies/{study}/series")
def search_series(study: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    options = qido.parse(request.query_params.multi_items())
    return _search_answer(qido.series(seen.catalogue, _uid(study), options))


@router.get("/studies/{study}/instances")
def search_study_instances(study: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    options = qido.parse(request.query_params.multi_items())
    return _search_answer(qido.instances(seen.catalogue, _uid(study), None, options))


@router.get("/studies/{study}/series/{series}/instances")
def search_instances(study: str, series: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    options = qido.parse(request.query_params.multi_items())
    return _search_answer(qido.instances(seen.catalogue, _uid(study), _uid(series), options))


# --- WADO-RS: instances ----------------------------------------------------------------------


def _retrieve(request: Request, found: list[Instance]) -> StreamingResponse:
    syntaxes = [str(header(i).file_meta.get("TransferSyntaxUID", "")) for i in found]
    negotiation.instance_syntax_ok(request.headers.get("accept"), syntaxes)
    mark = multipart.boundary()
    paths = [i.path for i in found]
    body = multipart.files(paths, negotiation.DICOM, mark)
    length = multipart.files_length(paths, negotiation.DICOM, mark)
    return StreamingResponse(
        body,
        media_type=multipart.content_type(negotiation.DICOM, mark),
        headers={"Content-Length": str(length)},
    )


@router.get("/studies/{study}")
def retrieve_study(study: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _retrieve(request, seen.catalogue.select(_uid(study)))


@router.get("/studies/{study}/series/{series}")
def retrieve_series(study: str, series: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _retrieve(request, seen.catalogue.select(_uid(study), _uid(series)))


@router.get("/studies/{study}/series/{series}/instances/{sop}")
def retrieve_instance(study: str, series: str, sop: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _retrieve(request, [_instance(seen, study, series, sop)])


# --- WADO-RS: metadata -----------------------------------------------------------------------


def _metadata(request: Request, seen: Viewing, found: list[Instance]) -> StreamingResponse:
    negotiation.choose(request.headers.get("accept"), (JSON, "application/json"))

    def body() -> Iterator[bytes]:
        yield b"["
        for index, instance in enumerate(found):
            item = metadata.instance_json(instance, seen.instance_url(instance))
            yield (b"," if index else b"") + json.dumps(item).encode()
        yield b"]"

    return StreamingResponse(body(), media_type=JSON)


@router.get("/studies/{study}/metadata")
def study_metadata(study: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _metadata(request, seen, seen.catalogue.select(_uid(study)))


@router.get("/studies/{study}/series/{series}/metadata")
def series_metadata(study: str, series: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _metadata(request, seen, seen.catalogue.select(_uid(study), _uid(series)))


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata")
def instance_metadata(study: str, series: str, sop: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _metadata(request, seen, [_instance(seen, study, series, sop)])


# --- WADO-RS: frames and bulk data -----------------------------------------------------------


def _frame_numbers(raw: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",")]
    except ValueError:
        raise NotFoundError("not a frame list") from None


def _frames_answer(request: Request, instance: Instance, numbers: list[int]) -> Response:
    location = _pixels(instance)
    frames.check_numbers(location, numbers)
    answer = negotiation.frame_answer(request.headers.get("accept"), location.syntax)
    read = frames.decoded if answer.decode else frames.stored
    mark = multipart.boundary()
    parts = ((answer.content_type, read(instance.path, location, n)) for n in numbers)
    media_type = multipart.content_type(answer.media_type, mark, answer.syntax)
    return StreamingResponse(multipart.parts(parts, mark), media_type=media_type)


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}")
def retrieve_frames(
    study: str, series: str, sop: str, numbers: str, request: Request, ctx: Ctx
) -> Response:
    seen = viewing(request, ctx)
    instance = _instance(seen, study, series, sop)
    return _frames_answer(request, instance, _frame_numbers(numbers))


@router.get("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}")
def retrieve_bulkdata(
    study: str, series: str, sop: str, tag: str, request: Request, ctx: Ctx
) -> Response:
    """A BulkDataURI of our metadata: the pixel data as frames, another value as it is."""
    seen = viewing(request, ctx)
    instance = _instance(seen, study, series, sop)
    number = _tag(tag)
    if number in frames.PIXEL_TAGS:
        location = _pixels(instance)
        return _frames_answer(request, instance, list(range(1, location.frames + 1)))
    value = metadata.bulk_value(instance, number)
    if value is None:
        raise NotFoundError("no such bulk data")
    mark = multipart.boundary()
    body = multipart.parts([(negotiation.OCTET, value)], mark)
    return StreamingResponse(body, media_type=multipart.content_type(negotiation.OCTET, mark))


def _tag(raw: str) -> int:
    if len(raw) != 8:
        raise NotFoundError("not a tag")
    try:
        return int(raw, 16)
    except ValueError:
        raise NotFoundError("not a tag") from None


# --- WADO-RS: rendered and thumbnails --------------------------------------------------------


def _image(
    request: Request,
    ctx: Context,
    instance: Instance,
    frame: int | None = None,
    thumbnail: bool = False,
) -> Response:
    media_type = negotiation.choose(request.headers.get("accept"), tuple(rendered.FORMATS))
    body = rendered.image(
        instance,
        media_type,
        ctx.settings.imports.thumbnail_max_pixels,
        frame=frame,
        viewport=request.query_params.get("viewport"),
        thumbnail=thumbnail,
    )
    return Response(body, media_type=media_type)


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered")
def rendered_instance(study: str, series: str, sop: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    return _image(request, ctx, _instance(seen, study, series, sop))


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{number}/rendered")
def rendered_frame(
    study: str, series: str, sop: str, number: int, request: Request, ctx: Ctx
) -> Response:
    seen = viewing(request, ctx)
    instance = _instance(seen, study, series, sop)
    frames.check_numbers(_pixels(instance), [number])
    return _image(request, ctx, instance, frame=number)


@router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail")
def instance_thumbnail(study: str, series: str, sop: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    instance = _instance(seen, study, series, sop)
    return _image(request, ctx, instance, thumbnail=True)


@router.get("/studies/{study}/series/{series}/thumbnail")
def series_thumbnail(study: str, series: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    found = seen.catalogue.select(_uid(study), _uid(series))
    return _image(request, ctx, found[len(found) // 2], thumbnail=True)


@router.get("/studies/{study}/thumbnail")
def study_thumbnail(study: str, request: Request, ctx: Ctx) -> Response:
    seen = viewing(request, ctx)
    found = seen.catalogue.select(_uid(study))
    return _image(request, ctx, found[len(found) // 2], thumbnail=True)
