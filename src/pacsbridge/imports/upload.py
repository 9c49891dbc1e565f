"""Resumable archive upload: append each part at its offset, refuse a wrong offset (409).

The body arrives raw (not multipart, which would spool a second copy) and goes to disk in
chunks, so server memory does not grow with the archive. The bytes on disk are the truth about
what was received: after a dropped connection ``GET .../archive`` answers the file's length and
the browser resumes there (docs/operator-pages.md: fixed-size parts with offsets). A cancel
wins over a part in flight: the part ends with 409 and its bytes are deleted
(docs/lifecycle.md).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from sqlalchemy import update

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ArchiveTooLarge, ConflictError, InputError, StorageFull, WrongOffset
from pacsbridge.imports import lifecycle, workspace
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.models import Import, Launch
from pacsbridge.imports.scope import load_import
from pacsbridge.jobs import ledger

RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
#: One condition per import (per event loop: each server has its own): its parts are written
#: one after the other, in order.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Condition]] = (
    weakref.WeakKeyDictionary()
)
#: Body chunks (16-256 KB as they come off the socket) are gathered up to this size before
#: one write in a worker thread: a thread hop for each chunk cost more than its bytes.
WRITE_BYTES = 1024**2


@dataclass(frozen=True)
class Part:
    """Where a part starts and the total announced (None: whole body, length unknown)."""

    start: int
    total: int | None


def parse_range(header: str | None, content_length: int | None) -> Part:
    """``Content-Range: bytes a-b/total``; without it the body is the whole archive."""
    if not header:
        return Part(0, content_length)
    match = RANGE.match(header.strip())
    if not match:
        raise InputError("bad Content-Range", fields=[{"field": "Content-Range", "error": header}])
    start, end, total = int(match[1]), int(match[2]), match[3]
    size = None if total == "*" else int(total)
    if end < start or (size is not None and end >= size):
        raise InputError("bad Content-Range", fields=[{"field": "Content-Range", "error": header}])
    return Part(start, size)


def status(ctx: Context, import_id: int, launch: Launch) -> dict[str, object]:
    """What the server holds: the resume point of an interrupted upload."""
    with ctx.sessions() as session:
        row = load_import(session, import_id, launch)
        return _status(ctx, row)


def _status(ctx: Context, row: Import) -> dict[str, object]:
    path = workspace.archive_path(ctx.data_dir, row.id)
    received = path.stat().st_size if path.exists() else row.received_bytes
    return {
        "received_bytes": received,
        "total_bytes": row.archive_size,
        "state": row.state,
        "part_bytes": ctx.settings.upload.part_bytes,
    }


async def receive(
    ctx: Context, import_id: int, launch: Launch, part: Part, body: AsyncIterator[bytes]
) -> dict[str, object]:
    """Append one part; when the last byte is in, start the analysis.

    Parts are written one at a time, in order. A part that starts beyond what is stored
    (the browser sends the next part while the one before is still travelling) waits, at
    most ``upload.part_wait_seconds``, for the bytes before it; its body is not read
    meanwhile. Every other wrong offset is refused at once.
    """
    turns = _turns.setdefault(asyncio.get_running_loop(), {})
    turn = turns.setdefault(import_id, asyncio.Condition())
    async with turn:
        try:
            received = await _wait_turn(ctx, turn, import_id, launch, part)
            path = workspace.archive_path(ctx.data_dir, import_id)
            written = await _append(ctx, path, body, received, part.total)
            try:
                return await anyio.to_thread.run_sync(
                    _after_part, ctx, import_id, part, received + written
                )
            except ConflictError:  # cancelled while the part arrived: its bytes go too
                await anyio.to_thread.run_sync(lifecycle.delete_files, ctx, import_id, "cancelled")
                raise
        finally:
            turn.notify_all()  # a part waiting for these bytes checks again


async def _wait_turn(
    ctx: Context, turn: asyncio.Condition, import_id: int, launch: Launch, part: Part
) -> int:
    """The stored offset once it is the part's start; WrongOffset when it never becomes it."""
    deadline = asyncio.get_running_loop().time() + ctx.settings.upload.part_wait_seconds
    while True:
        try:
            return await anyio.to_thread.run_sync(_check_part, ctx, import_id, launch, part)
        except WrongOffset as error:
            left = deadline - asyncio.get_running_loop().time()
            if part.start < error.params["received"] or left <= 0:
                raise
            try:
                await asyncio.wait_for(turn.wait(), left)
            except TimeoutError:
                raise error from None


def _check_part(ctx: Context, import_id: int, launch: Launch, part: Part) -> int:
    limit = ctx.settings.upload.max_archive_bytes
    with ctx.sessions.begin() as session:
        row = load_import(session, import_id, launch)
        if not lifecycle.uploadable(row.state):
            raise ConflictError(f"import is {row.state}: upload closed", state=row.state)
        received = _status(ctx, row)["received_bytes"]
        assert isinstance(received, int)
        if part.start != received:
            raise WrongOffset(f"part starts at {part.start}, stored {received}", received=received)
        if part.total is not None and part.total > limit:
            raise ArchiveTooLarge(f"{part.total} > {limit} bytes", reason=f"oltre {limit} byte")
        _check_disk(ctx, (part.total or 0) - received)
        _mark_uploading(ctx, session, row, part)
        return received


def _check_disk(ctx: Context, needed: int) -> None:
    # Twice the archive: it is extracted next to itself before being deleted.
    margin = ctx.settings.storage.free_margin_bytes
    if workspace.free_bytes(ctx.data_dir) < 2 * max(needed, 0) + margin:
        raise StorageFull(f"need {2 * needed} bytes free")


def _mark_uploading(ctx: Context, session, row: Import, part: Part) -> None:  # noqa: ANN001
    if row.state == ImportState.CREATED:
        lifecycle.require(session, row, ImportState.UPLOADING, updated_at=ctx.clock.now())
        audit.record(
            session, ctx.clock.now(), "upload.started", import_id=row.id, total_bytes=part.total
        )
    if part.total is not None:
        row.archive_size = part.total
    row.updated_at = ctx.clock.now()


async def _append(
    ctx: Context,
    path,
    body: AsyncIterator[bytes],
    start: int,
    total: int | None,  # noqa: ANN001
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = total if total is not None else ctx.settings.upload.max_archive_bytes
    written = 0
    with open(path, "ab") as handle:
        handle.truncate(start)  # drop a torn tail beyond the recorded offset
        pending = bytearray()
        try:
            async for chunk in body:
                if start + written + len(pending) + len(chunk) > limit:
                    raise ArchiveTooLarge(
                        "body longer than announced", reason="più lungo del previsto"
                    )
                pending += chunk
                if len(pending) >= WRITE_BYTES:
                    written += await _write(handle, pending)
                    pending = bytearray()
        finally:  # bytes received before a dropped connection count: the upload resumes after them
            handle.write(pending)
    return written + len(pending)


async def _write(handle, data: bytearray) -> int:  # noqa: ANN001
    await anyio.to_thread.run_sync(handle.write, data)
    return len(data)


def _after_part(ctx: Context, import_id: int, part: Part, received: int) -> dict[str, object]:
    """Record the part; the last one starts the analysis, unless a cancel came first (409)."""
    total = part.total if part.total is not None else received
    done = received == total and total > 0
    with ctx.sessions.begin() as session:
        values = {"received_bytes": received, "updated_at": ctx.clock.now()}
        if done:
            values["archive_size"] = total
        to = ImportState.ANALYSING if done else None
        if not _record_part(session, import_id, to, values):
            raise ConflictError("import cancelled during the part", state=ImportState.CANCELLED)
        if done:
            audit.record(
                session, ctx.clock.now(), "upload.completed", import_id=import_id, total_bytes=total
            )
        row = session.get(Import, import_id, populate_existing=True)
        assert row is not None
        answer = _status(ctx, row)
    if done:
        ctx.queue.enqueue(ledger.Task.ANALYSE, import_id)
    return answer


def _record_part(session, import_id: int, to: ImportState | None, values: dict) -> bool:  # noqa: ANN001
    """Compare-and-set on ``uploading``: False when a cancel won while the part was written."""
    if to is not None:
        return lifecycle.move(session, import_id, ImportState.UPLOADING, to, **values)
    statement = update(Import).where(Import.id == import_id, Import.state == ImportState.UPLOADING)
    return session.execute(statement.values(**values)).rowcount == 1
