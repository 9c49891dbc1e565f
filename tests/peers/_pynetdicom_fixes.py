"""Two pynetdicom 3.0 behaviours that make tests slow or flaky, and their work-arounds.

1. Nagle: pynetdicom never sets TCP_NODELAY, so a DIMSE message sent as several writes
   (command + data set) waits ~40 ms for the peer's delayed ACK.
2. A race (pynetdicom issues #435, #875): ``send_c_*()`` pauses the association's reactor
   thread by clearing ``_reactor_checkpoint`` and waiting for ``_is_paused``, but the reactor
   sets ``_is_paused = True`` just *before* ``_reactor_checkpoint.wait()``, so the sender can
   see a stale True while the reactor goes on and takes the response off the DIMSE queue
   ("Received unexpected C-STORE service message"); the sender then waits a whole DIMSE
   timeout. The guard below puts back whatever the reactor takes while a sender is active.

Used per association in the test process (``patch_association``: only associations the
fixtures and tests make, never pacsbridge's) and process-wide in the pynetdicom qrscp child
(``patch_process``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

_QueueItem = tuple[Any, Any]


def nodelay(sock: socket.socket) -> socket.socket:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _guarded(dimse: Any, item: _QueueItem, block: bool) -> _QueueItem:
    if block or item[1] is None:
        return item
    checkpoint = getattr(dimse.assoc, "_reactor_checkpoint", None)
    if checkpoint is None or checkpoint.is_set():
        return item
    # A send_*() is waiting for this message: give it back, at the head of the queue.
    queue = dimse.msg_queue
    with queue.mutex:
        queue.queue.appendleft(item)
        queue.not_empty.notify()
    return None, None


def patch_association(assoc: Any) -> Any:
    """TCP_NODELAY and the reactor guard for one established association."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        nodelay(sock)
    dimse = assoc.dimse
    if not getattr(dimse, "_peers_guarded", False):
        original: Callable[..., _QueueItem] = dimse.get_msg

        def get_msg(block: bool = False) -> _QueueItem:
            return _guarded(dimse, original(block), block)

        dimse.get_msg = get_msg
        dimse._peers_guarded = True
    return assoc


def patch_process() -> None:
    """Both fixes for every association of this process (the qrscp child only)."""
    from pynetdicom import dimse, transport

    accept = transport.AssociationServer.get_request
    create = transport.AssociationSocket._create_socket
    get_msg = dimse.DIMSEServiceProvider.get_msg

    def get_request(self: Any) -> tuple[socket.socket, Any]:
        sock, address = accept(self)
        return nodelay(sock), address

    def create_socket(self: Any, address: Any) -> socket.socket:
        return nodelay(create(self, address))

    def guarded_get_msg(self: Any, block: bool = False) -> _QueueItem:
        return _guarded(self, get_msg(self, block), block)

    transport.AssociationServer.get_request = get_request  # type: ignore[method-assign]
    transport.AssociationSocket._create_socket = create_socket  # type: ignore[method-assign]
    dimse.DIMSEServiceProvider.get_msg = guarded_get_msg  # type: ignore[method-assign]
