"""Our Storage SCP's data phase on the association's own thread, straight off the socket.

pynetdicom still accepts or rejects the association (our gate, the presentation contexts);
then ``dicomnet/acceptor_handover.py`` hands the socket to :class:`StoreLoop`, which serves the
rest of the association on the association's thread (docs/engineering-notes.md, "C-STORE
receive"):

* P-DATA-TF PDUs are read into one buffer, many per ``recv_into``; every PDV of a PDU is
  handled, command and data fragments of any size (PS3.8 §9.3.5, Annex E).
* When a C-STORE-RQ's command set is whole, its elements are read by hand (PS3.7 §9.3.1.1) and
  ``land(request)`` decides *before* any data is written: a path (a temporary name of ours in
  the instance's final folder) or a refusal status, in which case the data set is read and
  dropped. The data fragments are written straight into that file after a hand-built File
  Meta (PS3.10 §7.1, the presentation context's transfer syntax), with one ``writev`` per
  buffer; once whole, ``store(request)`` runs every check on the file and moves it into
  place, and the C-STORE-RSP is sent in PDUs no longer than the peer's maximum (PS3.8 §D.1).
* C-ECHO is answered. A-RELEASE-RQ is answered with A-RELEASE-RP; an A-ABORT, a closed
  connection, a timeout or any other message (answered with A-ABORT) ends the association.
  A file being written when the association ends is deleted: no partial file is ever left.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynetdicom.association import Association

from pacsbridge.dicomnet.acceptor_handover import Handover
from pacsbridge.dicomnet.wire import (
    _A_ABORT,
    _A_RELEASE_RQ,
    _ABORT_PDU,
    _P_DATA_TF,
    _PDU_HEADER,
    _RELEASE_RP_PDU,
    LARGEST_COMMAND,
    LARGEST_PDU,
    MAX_IOV,
    PeerEnded,
    _abort_text,
    _pdv_header,
)
from pacsbridge.dicomnet.wire_receive import (
    C_ECHO_RQ,
    C_STORE_RQ,
    Command,
    echo_response,
    file_meta,
    parse_command,
    store_response,
)

log = logging.getLogger(__name__)

PROCESSING_FAILURE = 0x0110
OUT_OF_RESOURCES = 0xA700
#: A PDU longer than :data:`PDU_SLACK` times our maximum, or than wire's :data:`LARGEST_PDU`,
#: ends the association (peers must honour our maximum, PS3.8 §D.1).
PDU_SLACK = 4
#: Smallest read buffer: many PDUs per ``recv_into`` at small PDU sizes.
MIN_BUFFER = 1024 * 1024


class Ended(Exception):
    """The association ended; ``released`` tells a release from an abort."""

    def __init__(self, why: str, released: bool = False) -> None:
        super().__init__(why)
        self.released = released


@dataclass
class Incoming:
    """One C-STORE as the fast path sees it; ``request`` is what the handler gets."""

    command: Command
    context_id: int
    request: Any = None  # dicomnet.scp.StoreRequest
    part: Path | None = None
    fd: int | None = None
    status: int | None = None  # decided before the data (refusal) or on a write failure
    pending: list[memoryview] = field(default_factory=list)


class _TooLong(PeerEnded):
    """A PDU far longer than our maximum: answered with A-ABORT, never buffered."""


class _Reader:
    """PDUs from the socket through one buffer; a body is valid until the next ``pdu()``."""

    def __init__(
        self, sock: socket.socket, size: int, before_read: Callable[[], None], largest: int
    ) -> None:
        self.sock, self.before_read, self.largest = sock, before_read, largest
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    def _fill(self, need: int) -> None:
        if self.end - self.start >= need:
            return
        self.before_read()  # fragments still pointing into the buffer are written now
        if len(self.buf) - self.start < need:
            left = self.buf[self.start : self.end]
            if need > len(self.buf):
                self.buf = bytearray(max(need, 2 * len(self.buf)))
                self.view = memoryview(self.buf)
            self.buf[: len(left)] = left
            self.start, self.end = 0, len(left)
        while self.end - self.start < need:
            n = self.sock.recv_into(self.view[self.end :])
            if n == 0:
                raise PeerEnded("the peer closed the connection")
            self.end += n

    def pdu(self) -> tuple[int, int, int]:
        """(PDU type, offset of its body in ``view``, body length)."""
        self._fill(6)
        kind, _, length = _PDU_HEADER.unpack_from(self.buf, self.start)
        if length > self.largest:
            raise _TooLong(f"a PDU of {length} bytes, far above our maximum; aborted")
        self._fill(6 + length)
        body = self.start + 6
        self.start = body + length
        return kind, body, length


class StoreLoop:
    """Serves one established association: C-STOREs and C-ECHOs until release or abort."""

    def __init__(
        self,
        assoc: Association,
        handover: Handover,
        land: Callable[[Any], Path | int],
        store: Callable[[Any], int],
        new_request: Callable[[Command], Any],
    ) -> None:
        self._assoc, self._handover, self._land, self._store = assoc, handover, land, store
        self._new_request = new_request
        self._contexts: dict[int, str] = {}
        self._fragment = 1 << 20
        self._largest = LARGEST_PDU
        self._msg: Incoming | None = None
        self._command = bytearray()
        self._command_context = 0

    def __call__(self, sock: socket.socket) -> bool:
        """Run until the association ends (always ends it: True for ``Handover.install``)."""
        released = False
        assoc = self._assoc  # negotiated by now: contexts and maximum lengths are known
        self._contexts = {
            int(cx.context_id): str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts
        }
        peer_max = assoc.requestor.maximum_length or 0
        self._fragment = peer_max - 6 if peer_max > 6 else 1 << 20
        ours = assoc.acceptor.maximum_length or 0
        buffer = max(MIN_BUFFER, 4 * (ours + 6))
        self._largest = min(LARGEST_PDU, PDU_SLACK * ours) if ours else LARGEST_PDU
        try:
            sock.settimeout(assoc.network_timeout)
            self._serve(sock, buffer)
        except Ended as ended:
            released = ended.released
            self._log_end(str(ended), released)
        except PeerEnded as ended:
            if isinstance(ended, _TooLong):
                self._abort(sock)
            self._log_end(str(ended), False)
        except TimeoutError:
            self._abort(sock)
            self._log_end("no data within the network timeout; aborted", False)
        except OSError as error:
            self._log_end(f"connection lost ({error.__class__.__name__})", False)
        finally:
            self._discard()
            self._handover.end(released)
        return True

    def _log_end(self, why: str, released: bool) -> None:
        if self._msg is None and released:
            return  # the ordinary end
        if self._handover.aborted_here:
            why = "aborted by our side"
        during = " during a C-STORE (its partial file deleted)" if self._msg else ""
        log.warning("storage association ended: %s%s", why, during)

    def _serve(self, sock: socket.socket, buffer: int) -> None:
        reader = _Reader(sock, buffer, self._flush, self._largest)
        buf = reader.buf
        while True:
            kind, body, length = reader.pdu()
            buf = reader.buf
            if kind == _P_DATA_TF:
                self._pdvs(sock, reader.view, buf, body, body + length)
            elif kind == _A_RELEASE_RQ:
                sock.sendall(_RELEASE_RP_PDU)
                raise Ended("the peer released the association", released=True)
            elif kind == _A_ABORT:
                raise Ended(_abort_text(bytearray(buf[body : body + length])))
            else:
                self._abort(sock)
                raise Ended(f"unexpected PDU type 0x{kind:02X}; aborted")

    def _pdvs(
        self, sock: socket.socket, view: memoryview, buf: bytearray, at: int, end: int
    ) -> None:
        while at < end:
            if at + 6 > end:
                raise self._protocol(sock, "malformed P-DATA-TF")
            length = int.from_bytes(buf[at : at + 4], "big")
            if length < 2 or at + 4 + length > end:
                raise self._protocol(sock, "malformed P-DATA-TF")
            context_id, control = buf[at + 4], buf[at + 5]
            fragment = view[at + 6 : at + 4 + length]
            if control & 0x01:
                self._command_fragment(sock, context_id, control, fragment)
            else:
                self._data_fragment(sock, context_id, control, fragment)
            at += 4 + length

    def _command_fragment(
        self, sock: socket.socket, context_id: int, control: int, fragment: memoryview
    ) -> None:
        if self._msg is not None or (self._command and context_id != self._command_context):
            raise self._protocol(sock, "a command set in the middle of a message")
        self._command_context = context_id
        if len(self._command) + len(fragment) > LARGEST_COMMAND:
            raise self._protocol(sock, f"a command set longer than {LARGEST_COMMAND} bytes")
        self._command += fragment
        if not control & 0x02:
            return
        command = parse_command(self._command)
        self._command = bytearray()
        if context_id not in self._contexts:
            raise self._protocol(sock, f"presentation context {context_id} was not accepted")
        if command.field == C_ECHO_RQ and not command.has_data_set:
            self._send_command(sock, context_id, echo_response(command))
        elif command.field == C_STORE_RQ and command.has_data_set:
            self._begin(command, context_id)
        else:
            raise self._protocol(sock, f"unsupported message (command 0x{command.field or 0:04X})")

    def _begin(self, command: Command, context_id: int) -> None:
        """Decide before any data is written: where it goes, or which refusal to answer."""
        msg = self._msg = Incoming(command, context_id, self._new_request(command))
        try:
            landing = self._land(msg.request)
        except Exception:  # noqa: BLE001 - a failure status, never a crash of the association
            log.exception("C-STORE landing failed")
            landing = PROCESSING_FAILURE
        if isinstance(landing, int):
            msg.status = landing
            return
        meta = file_meta(
            command.sop_class_uid, command.sop_instance_uid, self._contexts[context_id]
        )
        try:
            msg.fd = os.open(landing, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            msg.part = landing
            msg.pending.append(memoryview(meta))
        except OSError as error:
            self._write_failed(msg, error)

    def _data_fragment(
        self, sock: socket.socket, context_id: int, control: int, fragment: memoryview
    ) -> None:
        msg = self._msg
        if msg is None or context_id != msg.context_id:
            raise self._protocol(sock, "a data set without its command")
        if msg.fd is not None:
            msg.pending.append(fragment)
        if control & 0x02:
            self._finish(sock, msg)

    def _flush(self) -> None:
        msg = self._msg
        if msg is None or not msg.pending:
            return
        pending, msg.pending = msg.pending, []
        if msg.fd is None:
            return
        try:
            while pending:
                batch = pending[:MAX_IOV]
                written = os.writev(msg.fd, batch)
                _advance(pending, written)
        except OSError as error:
            self._write_failed(msg, error)

    def _write_failed(self, msg: Incoming, error: OSError) -> None:
        """The disk refused: drop the file, read the rest, answer a failure."""
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        log.error("cannot write a received instance (%s)", error.__class__.__name__)
        msg.status = OUT_OF_RESOURCES if full else PROCESSING_FAILURE
        self._close_part(msg, delete=True)

    def _finish(self, sock: socket.socket, msg: Incoming) -> None:
        self._flush()
        if msg.fd is not None:
            self._close_part(msg, delete=False)
            msg.request.dataset_path = msg.part
            msg.request.in_place = True
            try:
                msg.status = self._store(msg.request)
            except Exception:  # noqa: BLE001 - a failure status, never a crash
                log.exception("C-STORE handler failed")
                msg.status = PROCESSING_FAILURE
        if msg.part is not None:
            msg.part.unlink(missing_ok=True)  # refused: the handler did not move it into place
        self._msg = None
        status = PROCESSING_FAILURE if msg.status is None else msg.status
        self._send_command(sock, msg.context_id, store_response(msg.command, status))

    def _close_part(self, msg: Incoming, delete: bool) -> None:
        if msg.fd is not None:
            os.close(msg.fd)
            msg.fd = None
        msg.pending = []
        if delete and msg.part is not None:
            msg.part.unlink(missing_ok=True)
            msg.part = None

    def _discard(self) -> None:
        """The association ended: the file of a C-STORE in flight must not survive."""
        if self._msg is not None:
            self._close_part(self._msg, delete=True)

    def _send_command(self, sock: socket.socket, context_id: int, command: bytes) -> None:
        frag = self._fragment
        pieces = []
        for start in range(0, len(command), frag):
            piece = command[start : start + frag]
            last = start + frag >= len(command)
            pieces += [_pdv_header(len(piece), context_id, 0x03 if last else 0x01), piece]
        sock.sendall(b"".join(pieces))

    def _protocol(self, sock: socket.socket, why: str) -> Ended:
        self._abort(sock)
        return Ended(f"{why}; aborted")

    @staticmethod
    def _abort(sock: socket.socket) -> None:
        try:
            sock.settimeout(1.0)
            sock.sendall(_ABORT_PDU)
        except OSError:
            pass


def _advance(pending: list[memoryview], written: int) -> None:
    """Drop what ``writev`` wrote from the front of ``pending``."""
    while written and pending:
        first = len(pending[0])
        if written >= first:
            written -= first
            pending.pop(0)
        else:
            pending[0] = pending[0][written:]
            written = 0
    while pending and not len(pending[0]):
        pending.pop(0)
