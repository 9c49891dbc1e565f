"""Open, use and close one association, translating every failure into pacsbridge errors.

Two pynetdicom 3.0 behaviours are corrected here, for every service:

* Nagle's algorithm: pynetdicom never sets ``TCP_NODELAY``, so each small DIMSE response waits
  ~40 ms for a delayed ACK (11x slower C-STORE of small instances, docs/engineering-notes.md).
* The response race (pydicom/pynetdicom#875): the requestor's reactor thread may take a C-STORE
  (or C-FIND/C-MOVE) *response* off the DIMSE queue before ``send_c_*()`` waits for it; pynetdicom
  then logs "Received unexpected ... service message", drops it, and the association stalls until
  the DIMSE timeout. We hand such a response back to the queue, where the waiting call gets it.
* The end of an association: ``Association.kill`` polls every 10 ms until the DUL thread is
  idle (Sta1), and the DUL reaches Sta1 just *after* it hands the A-RELEASE-RP to the waiting
  thread, so nearly every release lost 10 ms (docs/engineering-notes.md). The DUL now stops
  itself at the step that makes it idle, once a kill was asked for, and ``kill`` joins it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from pacsbridge.dicomnet import tls
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.errors import PeerRefused, PeerTimeout, PeerUnavailable

log = logging.getLogger(__name__)

# Send files from disk without decoding them (memory flat whatever the instance size) and
# receive C-STORE data sets straight into a file.
_config.STORE_SEND_CHUNKED_DATASET = True
_config.STORE_RECV_CHUNKED_DATASET = True
# pynetdicom logs patient identifiers at INFO/DEBUG (identifiers of C-FIND, C-STORE): keep them
# out of our logs (only the audit log may hold patient data).
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
if logging.getLogger("pynetdicom").level == logging.NOTSET:  # else pacsbridge.logs chose it
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


class _TranslatedFailures(logging.Filter):
    """Drop pynetdicom's ERROR lines (and TLS tracebacks) for failures we raise ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ssl.SSLError):
            return False  # a TLS handshake failure: raised as PeerTlsRefused / PeerUnavailable
        message = record.getMessage()
        return not message.startswith(("Association request failed", "TCP Initialisation Error"))


for _name in ("pynetdicom.transport", "pynetdicom.dul"):
    logging.getLogger(_name).addFilter(_TranslatedFailures())


def make_ae(local: LocalAE) -> AE:
    """A pynetdicom AE configured from our settings (a new one per use: AEs hold threads).

    pynetdicom's standard handlers build a DEBUG/INFO log record for every PDU and DIMSE
    message even when nobody shows them: 12 % of a C-STORE's CPU (docs/engineering-notes.md).
    They are bound only while the ``pynetdicom`` logger would show INFO.
    """
    enabled = logging.getLogger("pynetdicom").isEnabledFor(logging.INFO)
    _config.LOG_HANDLER_LEVEL = "standard" if enabled else "none"
    ae = AE(ae_title=local.ae_title)
    ae.acse_timeout = local.acse_timeout
    ae.dimse_timeout = local.dimse_timeout
    ae.network_timeout = local.network_timeout
    ae.connection_timeout = local.connection_timeout
    ae.maximum_pdu_size = local.maximum_pdu_size
    return ae


def set_nodelay(assoc: Association) -> None:
    """Disable Nagle on the association's socket (both requestor and acceptor sides)."""
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def on_connection_open(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` handler for acceptors (our Storage SCP)."""
    set_nodelay(event.assoc)


def _fix_response_race(assoc: Association) -> None:
    serve = assoc._serve_request

    def serve_or_requeue(msg: Any, context_id: int) -> None:
        if assoc.is_requestor and not msg.is_valid_request and msg.is_valid_response:
            assoc.dimse.msg_queue.put((context_id, msg))
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_requeue  # type: ignore[method-assign]


def _stop_dul_when_idle(assoc: Association) -> None:
    """``kill`` without its 10 ms polls: the DUL thread ends at Sta1 and ``kill`` joins it.

    pynetdicom's ``kill`` waits in ``time.sleep(0.01)`` steps for state Sta1 and then stops
    the DUL thread (``stop_dul``: its own ``_kill_thread``, then 1 ms polls for the thread's
    end). Here the state machine's ``transition`` (private, pynetdicom pinned at 3.0.4) stops
    the DUL in the step that reaches Sta1 once a kill is wanted, or ``kill`` stops it when it
    is idle already; ``kill`` then joins the thread and calls pynetdicom's own, which finds
    it ended. A DUL that never reaches Sta1 falls back to pynetdicom's polling after
    ``acse_timeout``.
    """
    dul, machine = assoc.dul, assoc.dul.state_machine
    original_kill, original_transition = assoc.kill, machine.transition
    wanted = threading.Event()

    def transition(state: str) -> None:
        original_transition(state)
        if state == "Sta1" and wanted.is_set():
            dul.kill_dul()  # the reactor leaves its loop before its next step

    def kill() -> None:
        if threading.current_thread() is not dul and dul.is_alive():
            assoc._reactor_checkpoint.set()  # as pynetdicom's kill: its reactor must run out
            assoc._kill = True
            wanted.set()
            if machine.current_state == "Sta1":
                dul.kill_dul()
            dul.join(assoc.acse_timeout)
        original_kill()

    machine.transition = transition  # type: ignore[method-assign]
    assoc.kill = kill  # type: ignore[method-assign]


@contextlib.contextmanager
def associate(
    local: LocalAE,
    peer: Peer,
    contexts: Sequence[PresentationContext],
    *,
    evt_handlers: list[tuple[Any, Any]] | None = None,
) -> Iterator[Association]:
    """Yield an established association; release it afterwards (abort it on an exception).

    Raises :class:`PeerUnavailable` when the peer cannot be reached or aborts, and
    :class:`PeerRefused` when it rejects the association permanently (a transient rejection,
    result 2, is retriable); with ``peer.tls``, :class:`PeerTlsRefused` when a certificate
    was refused (dicomnet/tls.py).
    """
    handshakes = tls.client_handshakes(local.tls, peer) if peer.tls else None
    tls_args = (handshakes, peer.tls_server_name or None) if handshakes else None
    ae = make_ae(local)
    ae.requested_contexts = list(contexts)
    try:
        assoc = ae.associate(
            peer.host,
            peer.port,
            ae_title=peer.ae_title,
            evt_handlers=evt_handlers or [],
            tls_args=tls_args,  # type: ignore[arg-type]  # duck-typed context: tls.Handshakes
        )
    except (OSError, RuntimeError) as error:  # pragma: no cover - pynetdicom reports, not raises
        raise PeerUnavailable(str(error), peer=peer.label) from error
    if not assoc.is_established:
        if handshakes is not None:
            tls.raise_for_failure(handshakes, peer)
        _raise_for(assoc, peer)
    set_nodelay(assoc)
    _fix_response_race(assoc)
    _stop_dul_when_idle(assoc)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()
    finally:
        ae.shutdown()


def _raise_for(assoc: Association, peer: Peer) -> None:
    if assoc.is_rejected:
        rsp = assoc.acceptor.primitive
        result = getattr(rsp, "result", None)
        reason = getattr(rsp, "reason_str", "") or getattr(rsp, "diagnostic", "")
        detail = f"association rejected (result {result}, {reason})"
        if result == 0x02:  # rejected-transient: the peer is busy
            raise PeerUnavailable(detail, peer=peer.label)
        raise PeerRefused(detail, peer=peer.label)
    if assoc.is_aborted:
        raise PeerUnavailable("association aborted by the peer", peer=peer.label)
    raise PeerUnavailable("connection failed or timed out", peer=peer.label)


def raise_no_response(assoc: Association, peer: Peer) -> NoReturn:
    """After a DIMSE call that returned no status: the peer went silent, or the link broke.

    pynetdicom answers both the same way (an empty response, the association then aborted),
    so both are :class:`PeerTimeout`; the detail says which state the association was in.
    """
    raise PeerTimeout(
        "no response (timeout or association aborted)"
        if not assoc.is_established
        else "no response within the DIMSE timeout",
        peer=peer.label,
    )


def status_of(status: Any) -> int | None:
    """The Status of a response data set, or None when none came (timeout, abort)."""
    if status is None or "Status" not in status:
        return None
    return int(status.get("Status"))  # a Dataset, or fast_move's dict by the same keywords
