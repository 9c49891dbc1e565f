"""Hand an accepted association's socket from pynetdicom to our receive loop, and back.

pynetdicom runs an acceptor on two threads: the DUL reactor reads every PDU off the socket, and
the association's reactor polls the DIMSE queue every 1 ms; together they made our Storage SCP
4.1-4.3x slower than DCMTK ``storescp`` (docs/engineering-notes.md, "C-STORE receive"). After
negotiation this module moves the socket, explicitly, to the association's own thread:

* :meth:`Handover.arm` (from ``EVT_REQUESTED``, before the A-ASSOCIATE-AC is sent) asks the DUL
  thread to park at its first step boundary in state Sta6 with nothing queued either way: right
  after it has sent the A-ASSOCIATE-AC and before it reads any PDU. Parked, it waits on an
  event with its idle timer off; nothing else in pynetdicom touches the socket.
* The association thread runs ``_run_reactor`` once established; :meth:`Handover.install`
  replaces it, for this association only, by a function that waits until the DUL is parked,
  runs our loop with the raw socket, and then either gives the association back
  (:meth:`give_back`, pynetdicom's own reactor runs from then on) or ends it
  (:meth:`end`: flags, ``EVT_RELEASED``/``EVT_ABORTED``, transport closed, DUL stopped).

pynetdicom is pinned at 3.0.4; these are the private attributes used, all of them here:
``DULServiceProvider._process_recv_primitive`` (wrapped: the park point), ``event_queue``,
``to_provider_queue``, ``state_machine.current_state``, ``_idle_timer``, ``_kill_thread``,
``AssociationSocket.socket`` (the raw socket) and ``Association._run_reactor`` (replaced);
``Association._abort_blocking`` is wrapped, as pynetdicom's would wait for the parked DUL.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

from pynetdicom import evt
from pynetdicom.association import Association

from pacsbridge.dicomnet.wire import _ABORT_PDU

#: Seconds the association thread waits for the DUL to park before using the slow path.
PARK_TIMEOUT = 10.0


class Handover:
    """The socket of one acceptor association, moved between pynetdicom and our loop."""

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._dul = assoc.dul
        self._lock = threading.Lock()
        self._armed = False
        self._parked = threading.Event()
        self._resume = threading.Event()
        self._idle_timeout: float | None = None
        self._ours: socket.socket | None = None  # while our loop owns the socket
        self._done = threading.Event()
        self.aborted_here = False  # ``Association.abort`` was called while our loop ran

    def arm(self) -> bool:
        """Ask the DUL to park once established; False when this socket cannot be handed over.

        TLS sockets stay with pynetdicom: ``ssl.SSLSocket`` offers no ``sendmsg`` and its
        buffered records make a hand-over in the middle of a stream unsafe.
        """
        raw = self.raw_socket()
        if raw is None or isinstance(raw, ssl.SSLSocket):
            return False
        process = self._dul._process_recv_primitive

        def process_or_park() -> bool:
            if self._armed and self._park_here():
                return True  # ended while parked: read nothing more, let the DUL stop
            return process()

        self._armed = True
        self._dul._process_recv_primitive = process_or_park  # type: ignore[method-assign]
        return True

    def install(self, loop: Callable[[socket.socket], bool]) -> None:
        """Run ``loop(raw socket)`` instead of pynetdicom's acceptor reactor.

        ``loop`` returns True when it ended the association itself (:meth:`end`), False to give
        it back to pynetdicom, whose reactor then serves the rest of the association.
        """
        original = self._assoc._run_reactor
        original_abort = self._assoc._abort_blocking

        def run_reactor() -> None:
            sock = self._take()
            if sock is not None:
                self._ours = sock
                try:
                    if loop(sock):
                        return
                finally:
                    self._ours = None
                    self._done.set()
            self.give_back()
            original()

        def abort(block: bool = True) -> None:
            """pynetdicom's abort waits for a DUL that is parked: end our loop instead."""
            sock = self._ours
            if sock is None:
                original_abort(block)
                return
            self.aborted_here = True
            with contextlib.suppress(OSError):
                sock.sendall(_ABORT_PDU)
                sock.shutdown(socket.SHUT_RDWR)  # our loop reads the end and ends the association
            if block:
                self._done.wait(PARK_TIMEOUT)

        self._assoc._run_reactor = run_reactor  # type: ignore[method-assign]
        # ``abort`` is re-pointed at ``_abort_blocking`` (or ``_abort_nonblocking``, which calls
        # it) around every event handler, so that is the one replaced.
        self._assoc._abort_blocking = abort  # type: ignore[method-assign]

    def _park_here(self) -> bool:
        """On the DUL thread, at a step boundary; True when the association ended meanwhile."""
        dul = self._dul
        with self._lock:
            if not self._armed or dul.state_machine.current_state != "Sta6":
                return False
            if not (dul.event_queue.empty() and dul.to_provider_queue.empty()):
                return False
            self._armed = False
        timer = dul._idle_timer
        self._idle_timeout, timer.timeout = timer.timeout, None  # parked is not idle
        self._parked.set()
        self._resume.wait()
        timer.timeout = self._idle_timeout
        timer.restart()
        return bool(dul._kill_thread)

    def _take(self) -> socket.socket | None:
        """The raw socket once the DUL is parked; None: it never parked (the slow path)."""
        if not self._parked.wait(PARK_TIMEOUT):
            with self._lock:
                if self._armed:
                    self._armed = False
                    return None
            self._parked.wait()  # parked just now
        return self.raw_socket()

    def raw_socket(self) -> socket.socket | None:
        return getattr(self._dul.socket, "socket", None)

    def give_back(self) -> None:
        """pynetdicom owns the socket again from the DUL's next step on."""
        with self._lock:
            self._armed = False
        self._resume.set()

    def end(self, released: bool) -> None:
        """After our loop released or aborted the association: tell pynetdicom, stop its DUL.

        The transport is closed through pynetdicom's socket wrapper, then the DUL thread is
        told to stop and woken: it leaves its loop at the next step whatever its state
        (``Association.kill`` would wait for Sta1, which a closed link may never reach).
        """
        assoc = self._assoc
        assoc.is_established = False
        if released:
            assoc.is_released = True
        else:
            assoc.is_aborted = True
        assoc._kill = True
        wrapper = self._dul.socket
        if wrapper is not None:
            wrapper.close()
        self._dul.kill_dul()
        self._resume.set()
        evt.trigger(assoc, evt.EVT_RELEASED if released else evt.EVT_ABORTED, {})
        self._dul.join(PARK_TIMEOUT)
