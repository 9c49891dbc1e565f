"""Send one HL7 v2 message over MLLP and wait for its acknowledgement.

MLLP (HL7 v2.5 Appendix C, Minimal Lower Layer Protocol) frames a message as
``<VT> message <FS><CR>``; the receiver answers on the same connection with an ACK whose MSA-2
echoes our MSH-10 (v2.5 2.9, original acknowledgement mode).

Why python-hl7's asyncio client inside ``asyncio.run``, and not a home-made socket loop: the
framing (``writeblock``/``readblock``, a block split over many TCP segments, a missing start
byte) is the library's, tested upstream and the same code our test listener runs as a server;
``asyncio.timeout`` bounds connect + send + ACK with one deadline. ``asyncio.run`` gives each
call its own event loop, so ``send`` is safe from any worker thread (Huey threads, the CLI).
It must not be called from a coroutine: there, use ``await asyncio.to_thread(send, ...)``.

Why one connection per message, although python-hl7 can keep one for many: pacsbridge sends
one or two messages per import, minutes apart; a long-lived connection would only add a
half-dead-socket case to handle.

Errors (translated here, once, from OSError/asyncio/python-hl7; see ``pacsbridge.errors``):

- ``PeerUnavailable`` [retriable]: connection refused or reset, no ACK within ``timeout``,
  connection closed without an ACK, a broken MLLP frame. Retrying is safe: the retry sends the
  same control id and the receiver can discard a duplicate.
- ``Hl7Rejected`` [permanent]: ACK code AE, AR, CE or CR; ``reason`` is MSA-3 or the ERR text.
- ``PeerError`` [permanent]: the answer is not an ACK, or acknowledges another control id: a
  misconfigured peer or interface engine that a human must look at.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from typing import Any

from hl7.mllp import InvalidBlockError, open_hl7_connection  # type: ignore[import-untyped]

from pacsbridge.errors import Hl7Rejected, PeerError, PeerUnavailable
from pacsbridge.hl7v2.messages import Ack, read_ack

#: Everything that means "no ACK came back": OSError covers refused, reset and TimeoutError;
#: EOFError is asyncio.IncompleteReadError (closed mid-answer); ValueError is an ACK over the
#: stream limit.
_NO_ACK = (OSError, EOFError, InvalidBlockError, ValueError)


def send(
    host: str,
    port: int,
    message: str,
    timeout: float = 30,
    encoding: str = "iso-8859-1",
    peer: str = "RIS",
) -> Ack:
    """Send ``message`` to ``host:port`` and return the accepting ACK (AA or CA).

    ``encoding`` must match the peer's and the message's MSH-18 (ISO 8859-1 by default);
    a message it cannot encode raises ``UnicodeEncodeError`` before connecting: that is a
    configuration error, not a peer condition.

    Raises:
        PeerUnavailable: no ACK (refused, timeout, closed); retriable.
        Hl7Rejected: AE, AR, CE or CR.
        PeerError: the answer is not an ACK for this message.
    """
    control_id = _control_id(message)
    payload = message.encode(encoding)
    try:
        answer = _run_alone(_exchange, host, port, payload, timeout)
    except _NO_ACK as exc:
        raise PeerUnavailable(_describe(exc, peer, host, port, timeout), peer=peer) from exc
    return _checked(answer.decode(encoding, errors="replace"), control_id, peer)


def _run_alone(work: Any, *args: Any) -> Any:
    """``asyncio.run(work(*args))``, on a thread of its own when this one already runs a loop.

    A caller inside a running event loop (an embedding application, a test driving a browser
    with Playwright's sync API) would otherwise get "asyncio.run() cannot be called from a
    running event loop" and the RIS would never hear of the import.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work(*args))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mllp") as pool:
        return pool.submit(lambda: asyncio.run(work(*args))).result()


async def _exchange(host: str, port: int, payload: bytes, timeout: float) -> bytes:
    """One connection: write the framed message, read one framed answer, close."""
    async with asyncio.timeout(timeout):
        reader, writer = await open_hl7_connection(host, port)
        try:
            writer.writeblock(payload)
            await writer.drain()
            answer: bytes = await reader.readblock()
            return answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _checked(answer: str, control_id: str, peer: str) -> Ack:
    """The ACK if it accepts our message; otherwise the matching error."""
    try:
        ack = read_ack(answer)
    except ValueError as exc:
        detail = f"{peer} answered with something else than an ACK: {exc}"
        raise PeerError(detail, peer=peer) from exc
    if ack.control_id != control_id:
        detail = f"{peer} acknowledged control id {ack.control_id!r}, we sent {control_id!r}"
        raise PeerError(detail, peer=peer)
    if not ack.accepted:
        # AR is permanent here as errors.py draws it, although v2.5 2.9.2.2 says an AR is
        # "unrelated to content (system down, internal error)" and a later resend may pass.
        reason = ack.text or ack.code
        raise Hl7Rejected(f"{peer} answered {ack.code}: {reason}", peer=peer, reason=reason)
    return ack


def _control_id(message: str) -> str:
    """MSH-10 of our own message (built by ``messages``, so plain and unescaped)."""
    fields = message.split("\r", 1)[0].split("|")
    if fields[0] != "MSH" or len(fields) < 10 or not fields[9]:
        raise ValueError("the message has no MSH-10 control id")
    return fields[9]


def _describe(exc: BaseException, peer: str, host: str, port: int, timeout: float) -> str:
    where = f"{peer} at {host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"{where}: no ACK within {timeout:g} s"
    if isinstance(exc, EOFError):
        return f"{where} closed the connection without an ACK"
    return f"{where}: {type(exc).__name__}: {exc}"
