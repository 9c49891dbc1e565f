"""Open, use and close one association, translating every failure into pacsbridge errors.

Two pynetdicom 3.0 behaviours are corrected here, for every service:

* Nagle's algorithm: pynetdicom never sets ``TCP_NODELAY``, so each small DIMSE response waits
  ~40 ms for a delayed ACK (11x slower C-STORE of small instances, docs/engineering-notes.md).
* The response race (pydicom/pynetdicom#875): the requestor's reactor thread may take a C-STORE
  (or C-FIND/C-MOVE) *response* off the DIMSE queue before ``send_c_*()`` waits for it; pynetdicom
  then logs "Received unexpected ... service message", drops it, and the association stalls until
  the DIMSE timeout. We hand such a response back to the queue, where the waiting call gets it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
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
    return int(status.Status)
