"""A real MLLP listener on 127.0.0.1 that records, ACKs, NAKs or hangs up, as the test says.

python-hl7's asyncio server (``hl7.mllp.start_hl7_server``) runs in a background thread with
its own event loop, so the code under test talks to it over a real socket from the test
thread. The port is chosen when the listener is made, so a test can start it late (peer down,
then up), stop it, and start it again on the same port.

Replies are scripted: ``listener.script(Reply.drop(), Reply.ack())`` answers the next
messages in that order, then ``listener.default`` (AA) for the rest. Every message received
is recorded, also those answered with a NAK or a hang-up.

Use it through the ``mllp_listener`` fixture (a factory)::

    def test_x(mllp_listener):
        ris = mllp_listener()                 # started
        later = mllp_listener(start=False)    # down until later.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import hl7
import pytest
from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server

__all__ = ["MllpListener", "Received", "Reply", "ack_for", "free_port", "mllp_listener"]

HOST = "127.0.0.1"
ENCODING = "iso-8859-1"
START_TIMEOUT = 10.0
_ACK_IDS = itertools.count(1)
T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """How the listener answers one message."""

    kind: Literal["ack", "drop", "silent"] = "ack"  # drop: hang up; silent: never answer
    code: str = "AA"
    text: str = ""
    control_id: str | None = None  # MSA-2 override; None echoes the message's MSH-10

    @classmethod
    def ack(cls, code: str = "AA", text: str = "", control_id: str | None = None) -> Reply:
        return cls("ack", code, text, control_id)

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls("ack", "AE", text)

    @classmethod
    def reject(cls, text: str) -> Reply:
        return cls("ack", "AR", text)

    @classmethod
    def drop(cls) -> Reply:
        return cls("drop")

    @classmethod
    def silent(cls) -> Reply:
        return cls("silent")


@dataclass(frozen=True)
class Received:
    """One message as it arrived: the decoded text and python-hl7's parse of it."""

    raw: str
    message: hl7.Message

    @property
    def control_id(self) -> str:
        return str(self.message.segment("MSH")(10))

    @property
    def message_type(self) -> str:
        return str(self.message.segment("MSH")(9))

    def get(self, key: str) -> str:
        """A value by python-hl7 accessor, unescaped: ``received.get("PID.F5.R1.C1")``."""
        return str(self.message[key])


class MllpListener:
    """One MLLP peer on ``HOST:port``; see the module docstring."""

    def __init__(self, encoding: str = ENCODING) -> None:
        self.host = HOST
        self.port = free_port()
        self.encoding = encoding
        self.default = Reply.ack()
        self.received: list[Received] = []
        self.errors: list[Exception] = []
        self._replies: deque[Reply] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def control_ids(self) -> list[str]:
        return [received.control_id for received in self.received]

    def script(self, *replies: Reply) -> None:
        """Answer the next messages with ``replies``, in order, then with ``default``."""
        self._replies.extend(replies)

    def start(self) -> MllpListener:
        """Listen; returns once the socket accepts connections (no sleep)."""
        assert not self.running, "already running"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._server = self._call(self._listen())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the server and every open connection, then end the loop and its thread."""
        if self._loop is None:
            return
        if self._server is not None:
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(START_TIMEOUT)
        self._loop.close()
        self._loop = self._thread = self._server = None

    # --- inside the listener's loop ------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` in the listener's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(START_TIMEOUT)

    async def _listen(self) -> asyncio.Server:
        def connected(reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        server: asyncio.Server = await start_hl7_server(
            connected, self.host, self.port, encoding=self.encoding
        )
        return server

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        """One connection: many messages, each recorded, then answered as scripted."""
        try:
            while await self._answer_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed or reset the connection
        except Exception as exc:  # a listener bug: kept for the test to see, never swallowed
            self.errors.append(exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer_one(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> bool:
        """Handle the next message; False when the connection must end."""
        raw = (await reader.readblock()).decode(self.encoding)
        received = Received(raw, hl7.parse(raw))
        self.received.append(received)
        reply = self._replies.popleft() if self._replies else self.default
        if reply.kind == "drop":
            return False
        if reply.kind == "silent":
            await reader.read()  # until the client gives up and closes
            return False
        writer.writeblock(ack_for(received, reply).encode(self.encoding))
        await writer.drain()
        return True


def ack_for(received: Received, reply: Reply) -> str:
    """An HL7 v2.5 ACK (original mode, v2.5 2.9): MSA, and ERR with the text when not AA."""
    msh = received.message.segment("MSH")
    trigger = received.get("MSH.F9.R1.C2")
    control_id = received.control_id if reply.control_id is None else reply.control_id
    text = received.message.escape(reply.text) if reply.text else ""
    header = [str(msh(5)), str(msh(6)), str(msh(3)), str(msh(4))]
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    segments = [
        "|".join(["MSH", "^~\\&", *header, stamp, "", f"ACK^{trigger}^ACK", _ack_id(), "P", "2.5"]),
        f"MSA|{reply.code}|{control_id}|{text}".rstrip("|"),
    ]
    if reply.code not in ("AA", "CA"):
        segments.append(f"ERR|||207^Application internal error^HL70357|E||||{text}")
    return "\r".join(segments) + "\r"


def _ack_id() -> str:
    return f"ACK{next(_ACK_IDS)}"


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mllp_listener() -> Iterator[Callable[..., MllpListener]]:
    """Factory of MLLP listeners; every listener made is stopped after the test."""
    made: list[MllpListener] = []

    def make(start: bool = True, encoding: str = ENCODING) -> MllpListener:
        listener = MllpListener(encoding)
        made.append(listener)
        return listener.start() if start else listener

    yield make
    for listener in made:
        listener.stop()
    errors = [error for listener in made for error in listener.errors]
    assert errors == [], f"the MLLP listener failed: {errors!r}"
