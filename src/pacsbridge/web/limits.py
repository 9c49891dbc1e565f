"""Request-body budgets at the ASGI layer, before any parsing: size and idle time.

Why here and not in the routes: FastAPI reads and parses a JSON body before any dependency
runs, so a limit checked in a route comes after the memory is spent. This middleware sees the
raw ``http.request`` messages:

- a body whose ``Content-Length`` passes its limit is refused with 413 when the route first
  asks for it, so nothing is read and the route's authentication still answers first;
- a body without ``Content-Length`` (chunked transfer) is counted as it arrives and refused the
  moment it passes the limit;
- the launch and the upload read their body themselves after authentication (``_streams``);
  any other route's body is read here, within its budget, before the route parses it;
- a body that stops arriving for ``web.body_idle_seconds`` answers 408.

The idle bound is one timer per body, not a cancel scope per received chunk: a 32 MiB archive
part arrives from Chromium in some 1,000 chunks (31 KB on average; curl's in 120), and an
``anyio.move_on_after`` around each took 13 % of the server's CPU during an upload
(bench/README.md).

Limits: a launch at its schema's maxima is under 3 KB, so 16 KiB; an archive part has
``upload.max_part_bytes``; every other body ``web.max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsbridge.errors import PacsbridgeError, RequestTimeout, RequestTooLarge
from pacsbridge.settings import Settings

LAUNCH_BODY_BYTES = 16 * 1024
UPLOAD_PATH = re.compile(r"^/api/v1/imports/[^/]+/archive$")


@dataclass
class BodyBudget:
    """One request's body: how much it may hold, how long it may pause, how much came."""

    receive: Receive
    limit: int
    idle_seconds: float
    declared: int | None
    received: int = 0
    complete: bool = False
    #: (the task waiting in ``receive()``, when it began waiting) while one waits
    _waiting: tuple[asyncio.Task, float] | None = field(default=None, repr=False)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)
    _stalled: bool = field(default=False, repr=False)

    async def __call__(self) -> Message:
        if self.complete:  # after the body only a disconnect can come: no idle limit then
            return await self.receive()
        if self.declared is not None and self.declared > self.limit:
            raise _too_large(self.limit)
        return self._count(await self._within_idle_bound())

    async def _within_idle_bound(self) -> Message:
        """``receive()``, cancelled once it has waited ``idle_seconds``: RequestTimeout.

        The timer is armed once and, when it fires while a wait is younger than the bound,
        re-armed for that wait's own deadline; a cancellation that is not ours goes on.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._waiting = (task, loop.time())
        if self._timer is None:
            self._timer = loop.call_at(loop.time() + self.idle_seconds, self._check)
        try:
            return await self.receive()
        except asyncio.CancelledError:
            stalled, self._stalled = self._stalled, False  # one cancel per stall, no more
            if stalled and task.uncancel() == 0:
                raise RequestTimeout(
                    "request body stalled", seconds=int(self.idle_seconds)
                ) from None
            raise
        finally:
            self._waiting = None

    def _check(self) -> None:
        self._timer = None
        if self._waiting is None:
            return  # not waiting now: the next wait arms the timer again
        task, since = self._waiting
        loop = asyncio.get_running_loop()
        due = since + self.idle_seconds
        if loop.time() < due:
            self._timer = loop.call_at(due, self._check)
            return
        self._stalled = True
        task.cancel()

    def close(self) -> None:
        """The request is over: no timer may fire for it any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _count(self, message: Message) -> Message:
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise _too_large(self.limit)
        self.complete = not message.get("more_body", False)
        return message

    async def buffered(self) -> Receive:
        """Read the whole (small) body now; hand the app a receive that replays it."""
        chunks = []
        while not self.complete:
            message = await self()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def receive() -> Message:
            return replay.pop() if replay else await self.receive()

        return receive


class BodyLimits:
    """Pure ASGI middleware enforcing :class:`BodyBudget` on every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = BodyBudget(
            receive, self.limit(scope), self.settings.web.body_idle_seconds, _declared(scope)
        )
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            app_receive = budget if _streams(scope) else await budget.buffered()
            await self.app(scope, app_receive, tracked)
        except (RequestTooLarge, RequestTimeout) as error:
            if started:
                raise
            await _refuse(scope, send, error)
        finally:
            budget.close()

    def limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if path == "/api/v1/launch":
            return LAUNCH_BODY_BYTES
        if UPLOAD_PATH.match(path):
            return self.settings.upload.max_part_bytes
        return self.settings.web.max_body_bytes


def _streams(scope: Scope) -> bool:
    """The launch and the upload read their own body after authenticating: they get it lazily.

    Every other route has FastAPI parse its body first, which would turn our 413 into a 400,
    so its (small) body is read here, within the budget, before the route runs.
    """
    path = scope.get("path", "")
    return path == "/api/v1/launch" or bool(UPLOAD_PATH.match(path))


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"request body over {limit} bytes", limit=limit)


def _declared(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, error: PacsbridgeError) -> None:
    """The error in the house shape (web/errors.py), and the connection closed after it."""
    from starlette.requests import Request

    from pacsbridge.web.errors import answer

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    response = answer(Request(scope, no_body), error)
    response.headers["Connection"] = "close"
    await response(scope, no_body, send)
