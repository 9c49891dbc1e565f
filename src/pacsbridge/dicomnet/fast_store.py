"""The C-STORE data phase on the association's own socket, from the calling thread.

pynetdicom turns every PDU into Python objects, passes them between three threads and a state
machine, and notices a response only after its reactor's 1 ms idle sleep; that made our sender
3.7-5.4x slower than DCMTK ``storescu`` (docs/engineering-notes.md, "C-STORE data phase").
pynetdicom still negotiates, releases and aborts the association, answers C-ECHO and sends
whatever this module does not handle (the slow path); only the data phase of an ordinary
C-STORE is done here:

* **Socket ownership** moves explicitly: :class:`SocketOwnership` asks pynetdicom's DUL thread
  to park itself between two reactor steps (state Sta6, nothing queued either way), and the DUL
  hands the socket over by setting an event. While parked its network idle timer is off (our
  reads carry their own timeouts); :meth:`SocketOwnership.give_back` wakes it again before
  release, C-ECHO or a slow-path send. No shared flags are polled and nothing sleeps.
* **Command sets** are encoded by hand (Implicit VR Little Endian, group 0000, PS3.7 §9.3.1.1
  and §E.1), the constant part once per presentation context; Message IDs increase.
* **Data** is the file's bytes after its File Meta (PS3.10 §7.1), sent as P-DATA-TF PDUs that
  honour the peer's maximum PDU length (PS3.8 §9.3.5, §D.1): one ``readinto`` and one
  ``sendmsg`` per block of up to :data:`BLOCK_BYTES`, so memory stays flat.
* **The C-STORE-RSP** is read and parsed on the same thread: several PDVs per PDU, command
  fragments at any size, a data set after the command (skipped). An A-ABORT, an A-RELEASE-RQ,
  a closed connection or a timeout end the data phase with :class:`PeerEnded`; the connection is
  then closed and pynetdicom sees the association end as an aborted one.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynetdicom.association import Association

from pacsbridge.dicomnet.wire import (
    _A_ABORT,
    _ABORT_PDU,
    _C_STORE_RSP,
    MAX_IOV,
    FileMeta,
    PeerEnded,
    _abort_text,
    _command_elements,
    _CommandTemplate,
    _pdv_header,
    _read_message,
    _read_pdu,
    _sendmsg_all,
    _text,
    _unsigned_short,
)

#: Bytes read from a file (and sent with one ``sendmsg``) at a time: the memory of one send.
BLOCK_BYTES = 4 * 1024 * 1024
#: Our fragment size when the peer sets no maximum PDU length (0: unlimited, PS3.8 §D.1).
UNLIMITED_FRAGMENT = 1024 * 1024


# -- File Meta ------------------------------------------------------------------------------


# -- Socket ownership -----------------------------------------------------------------------


@dataclass
class _Ticket:
    parked: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)
    refused: bool = False


class SocketOwnership:
    """Moves the association's socket between pynetdicom's DUL thread and the caller.

    The DUL reactor asks ``_process_recv_primitive`` for outgoing work at the top of every
    step, after the previous PDU was read whole and its event handled; we wrap that call so
    that, when a ticket is waiting and the DUL is idle in Sta6 (association established,
    nothing queued), the DUL thread parks there: it sets ``ticket.parked`` and blocks on
    ``ticket.resume``. Nothing else in pynetdicom touches the socket while it is parked.
    """

    def __init__(self, assoc: Association, timeout: float) -> None:
        self._assoc = assoc
        self._dul = assoc.dul
        self._timeout = timeout
        self._waiting: list[_Ticket] = []
        self._lock = threading.Lock()
        self._held: _Ticket | None = None
        process = self._dul._process_recv_primitive

        def process_or_park() -> bool:
            if self._waiting:
                self._park_here()
            return process()

        self._dul._process_recv_primitive = process_or_park  # type: ignore[method-assign]

    def _park_here(self) -> None:
        """Runs on the DUL thread."""
        dul = self._dul
        with self._lock:
            if not self._waiting:
                return
            if not (dul.event_queue.empty() and dul.to_provider_queue.empty()):
                return  # finish this work first; park on a later step
            ticket = self._waiting.pop(0)
        if dul.state_machine.current_state != "Sta6":
            ticket.refused = True
            ticket.parked.set()
            return
        timer = dul._idle_timer
        idle_timeout = timer.timeout
        timer.timeout = None  # parked is not idle: our reads carry their own timeout
        ticket.parked.set()
        ticket.resume.wait()
        timer.timeout = idle_timeout
        timer.restart()

    @property
    def held(self) -> bool:
        return self._held is not None

    def take(self) -> socket.socket | None:
        """The raw socket, once the DUL is parked; None when the association is not usable."""
        if self._held is not None:
            return self._raw()
        if not self._dul.is_alive() or not self._assoc.is_established:
            return None
        ticket = _Ticket()
        with self._lock:
            self._waiting.append(ticket)
        if not ticket.parked.wait(self._timeout):
            with self._lock:
                if ticket in self._waiting:  # the DUL never reached a step boundary
                    self._waiting.remove(ticket)
                    return None
            ticket.parked.wait()  # taken just now: the DUL sets it right after
        if ticket.refused:
            return None
        self._held = ticket
        # The association's own reactor polls every 1 ms for messages that cannot come while
        # the DUL is parked; let it wait at the checkpoint pynetdicom pauses it at for its own
        # sends (no need to wait for it to get there: it has nothing to do).
        self._assoc._reactor_checkpoint.clear()
        queued = not self._assoc.dimse.msg_queue.empty() or self._dul.to_user_queue.qsize()
        sock = self._raw()
        if queued or sock is None:  # something arrived for pynetdicom: let it deal with it
            self.give_back()
            return None
        return sock

    def _raw(self) -> socket.socket | None:
        wrapper = self._dul.socket
        return getattr(wrapper, "socket", None)

    def give_back(self) -> None:
        """Wake the DUL again; it owns the socket from its next step on."""
        ticket, self._held = self._held, None
        if ticket is not None:
            self._assoc._reactor_checkpoint.set()
            ticket.resume.set()

    def close_transport(self) -> None:
        """After a fault: close the connection and let pynetdicom see the association end.

        Closing through pynetdicom's socket wrapper queues its "transport closed" event
        (Evt17); once woken, the DUL reports an A-P-ABORT and the association's reactor ends
        its thread, which we wait for, so that nobody releases a dead link.
        """
        wrapper = self._dul.socket
        if wrapper is not None:
            wrapper.close()
        self.give_back()
        if self._assoc.is_alive():
            self._assoc.join(self._timeout)


# -- The data phase -------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    comment: str = ""


class DataPhase:
    """C-STOREs sent by the calling thread on an established association."""

    def __init__(self, assoc: Association, dimse_timeout: float, network_timeout: float) -> None:
        self._assoc = assoc
        self._dimse_timeout = dimse_timeout
        self._network_timeout = network_timeout
        self.ownership = SocketOwnership(assoc, network_timeout)
        peer_max = assoc.acceptor.maximum_length or 0
        self.fragment = peer_max - 6 if peer_max else UNLIMITED_FRAGMENT
        per_block = max(1, min(BLOCK_BYTES // self.fragment, (MAX_IOV - 2) // 2))
        self._buffer = bytearray(self.fragment * per_block)
        self._contexts = {
            (cx.abstract_syntax, cx.transfer_syntax[0]): int(cx.context_id)
            for cx in assoc.accepted_contexts
        }
        self._commands: dict[int, _CommandTemplate] = {}
        self.ended: str = ""  # why the association ended during the data phase

    def context_for(self, sop_class_uid: str, transfer_syntax_uid: str) -> int | None:
        return self._contexts.get((sop_class_uid, transfer_syntax_uid))

    def store(
        self, path: Path, meta: FileMeta, context_id: int, message_id: int
    ) -> Response | None:
        """Send one instance and wait for its response.

        None when the socket could not be taken over (the association is gone or pynetdicom
        has something queued): the caller uses the slow path. Raises :class:`PeerEnded`.
        """
        sock = self.ownership.take()
        if sock is None:
            return None
        try:
            sock.settimeout(self._network_timeout)  # a peer that stops reading: a clear error
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size - meta.dataset_offset
                f.seek(meta.dataset_offset)
                command = self._command(context_id, meta).encode(message_id, meta.sop_instance_uid)
                self._send_message(sock, f, size, command, context_id)
            return self._read_response(sock, message_id)
        except PeerEnded as ended:
            self._end(str(ended))
            raise
        except OSError as error:  # the file or the link failed midway: nothing can resume
            self._abort()
            self._end(f"connection lost during the transfer ({error.__class__.__name__})")
            raise PeerEnded(self.ended) from error

    def _command(self, context_id: int, meta: FileMeta) -> _CommandTemplate:
        template = self._commands.get(context_id)
        if template is None:
            template = self._commands[context_id] = _CommandTemplate(meta.sop_class_uid)
        return template

    def _send_message(
        self, sock: socket.socket, f: Any, size: int, command: bytes, context_id: int
    ) -> None:
        frag = self.fragment
        buffers: list[bytes | memoryview] = []
        for start in range(0, len(command), frag):
            piece = command[start : start + frag]
            last = start + frag >= len(command)
            buffers += [_pdv_header(len(piece), context_id, 0x03 if last else 0x01), piece]
        view = memoryview(self._buffer)
        left = size
        while left > 0:
            want = min(left, len(self._buffer))
            got = f.readinto(view[:want])
            if got != want:
                self._abort()
                raise PeerEnded("the file changed while it was being sent")  # aborts below
            left -= got
            for start in range(0, got, frag):
                piece = view[start : min(got, start + frag)]
                last = left == 0 and start + frag >= got
                buffers += [_pdv_header(len(piece), context_id, 0x02 if last else 0x00), piece]
            try:
                _sendmsg_all(sock, buffers)
            except OSError:
                self._raise_for_what_peer_said(sock)
                raise
            buffers = []

    def _raise_for_what_peer_said(self, sock: socket.socket) -> None:
        """A send failed: an A-ABORT may be waiting to say why."""
        try:
            sock.settimeout(1.0)
            kind, body = _read_pdu(sock)
        except (OSError, PeerEnded):
            return
        if kind == _A_ABORT:
            raise PeerEnded(_abort_text(body))

    def _read_response(self, sock: socket.socket, message_id: int) -> Response:
        sock.settimeout(self._dimse_timeout)
        try:
            command, _ = _read_message(sock, "the transfer", self._abort, keep_data=False)
        except TimeoutError:
            self._abort()
            raise PeerEnded("no response within the DIMSE timeout") from None
        finally:
            if sock.fileno() >= 0:
                sock.settimeout(None)
        return self._judge(command, message_id)

    def _judge(self, command: bytearray, message_id: int) -> Response:
        elements = _command_elements(command)
        field_ = _unsigned_short(elements.get(0x0100))
        answered = _unsigned_short(elements.get(0x0120))
        status = _unsigned_short(elements.get(0x0900))
        if field_ != _C_STORE_RSP or answered != message_id or status is None:
            self._abort()
            raise PeerEnded("the PACS answered with a message that is not our C-STORE response")
        return Response(status, _text(elements.get(0x0902)))

    def _abort(self) -> None:
        sock = self.ownership._raw()
        if sock is not None:
            try:
                sock.settimeout(1.0)
                sock.sendall(_ABORT_PDU)
            except OSError:
                pass

    def _end(self, why: str) -> None:
        self.ended = why
        self.ownership.close_transport()

    def give_back(self) -> None:
        """pynetdicom owns the socket again (slow path, C-ECHO, release)."""
        self.ownership.give_back()
