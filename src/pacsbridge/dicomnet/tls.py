"""DICOM TLS (PS3.15 Annex B, the BCP 195 secure transport connection profile) for pynetdicom.

* **Contexts**: TLS 1.2 or later (BCP 195, RFC 9325), Python's default cipher suites (ECDHE with
  AES-GCM or ChaCha20 first), the peer's certificate always required and checked against our
  trusted CAs (mutual authentication, PS3.15 B.1). Peers are configured by address, so a name
  is checked only when ``tls_server_name`` says which. Client contexts are cached per set of
  files and rebuilt when a file changes (a renewed certificate needs no restart).
* **Why a handshake failed**: pynetdicom logs a failed TLS handshake and reports only "not
  established"; :class:`Handshakes` (the context handed to pynetdicom) keeps the TLS errors
  of its sockets, so that :func:`raise_for_failure` can tell the user the certificate was
  refused, by us or by the peer, instead of "unreachable".
* **The acceptor's handshake** runs in the association's own thread (:func:`accept`), with a
  time limit: pynetdicom would run it in its accept loop, where one silent client stops
  every other caller.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import ssl
from typing import Any, NoReturn

from pynetdicom import evt

from pacsbridge.dicomnet.peers import Peer, TlsIdentity
from pacsbridge.errors import PeerTlsRefused, PeerUnavailable

log = logging.getLogger(__name__)

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
#: OpenSSL alert reasons that mean "the other end refused the certificate we presented".
_REFUSED_OURS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")


class _RecordingSocket(ssl.SSLSocket):
    """An SSLSocket that keeps its TLS errors where the association's caller can read them.

    In TLS 1.3 a server refuses a client certificate after the client's handshake is done, so
    the refusal arrives at the first read: reads are watched as well as the handshake.
    """

    _failures: list[OSError] | None = None

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except OSError as error:  # also a peer that closes on a ClientHello (no TLS there)
            self._record(error)
            raise

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - ssl's names
        try:
            return super().read(len, buffer)
        except ssl.SSLError as error:
            self._record(error)
            raise

    def _record(self, error: OSError) -> None:
        if self._failures is not None:
            self._failures.append(error)


class Handshakes:
    """What pynetdicom gets as ``tls_args[0]``: the shared context, one record per association.

    pynetdicom calls only ``wrap_socket`` on it (``AssociationSocket.connect``).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.failures: list[OSError] = []

    def wrap_socket(self, sock: socket.socket, **options: Any) -> ssl.SSLSocket:
        wrapped = self.context.wrap_socket(sock, **options)
        wrapped._failures = self.failures  # type: ignore[attr-defined]
        return wrapped


def _base(purpose: ssl.Purpose, identity: TlsIdentity) -> ssl.SSLContext:
    context = ssl.create_default_context(purpose, cafile=str(identity.ca_certificates))
    context.minimum_version = MINIMUM_VERSION
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(identity.certificate), str(identity.private_key))
    return context


def _stamp(identity: TlsIdentity) -> tuple[tuple[int, int], ...]:
    stats = (
        os.stat(path)
        for path in (identity.certificate, identity.private_key, identity.ca_certificates)
    )
    return tuple((s.st_mtime_ns, s.st_size) for s in stats)


@functools.lru_cache(maxsize=8)
def _client_context(
    identity: TlsIdentity, check_name: bool, stamp: tuple[tuple[int, int], ...]
) -> ssl.SSLContext:
    context = _base(ssl.Purpose.SERVER_AUTH, identity)
    context.check_hostname = check_name
    context.sslsocket_class = _RecordingSocket
    return context


def client_handshakes(identity: TlsIdentity | None, peer: Peer) -> Handshakes:
    """A fresh record over the (cached) client context for ``peer``.

    Raises :class:`PeerTlsRefused` when our own files cannot be used: nothing could pass.
    """
    if identity is None:
        raise PeerTlsRefused("DICOM TLS is on but dicom.tls is not configured", peer=peer.label)
    try:
        context = _client_context(identity, bool(peer.tls_server_name), _stamp(identity))
    except (OSError, ssl.SSLError) as error:
        raise PeerTlsRefused(
            f"our TLS certificate, key or CA file cannot be used ({type(error).__name__}: "
            f"{getattr(error, 'reason', None) or getattr(error, 'strerror', None) or error})",
            peer=peer.label,
        ) from error
    return Handshakes(context)


def raise_for_failure(handshakes: Handshakes, peer: Peer) -> None:
    """After an association that was not established: raise if TLS is why; else return."""
    if not handshakes.failures:
        return
    error = handshakes.failures[0]
    problem = certificate_problem(error)
    if problem:
        raise PeerTlsRefused(problem, peer=peer.label)
    _raise_unavailable(error, peer)


def _raise_unavailable(error: OSError, peer: Peer) -> NoReturn:
    raise PeerUnavailable(
        f"TLS handshake failed ({getattr(error, 'reason', None) or type(error).__name__}): "
        "is DICOM TLS on at both ends?",
        peer=peer.label,
    )


def certificate_problem(error: BaseException) -> str:
    """What was wrong with a certificate, in English; "" when the error is about something else."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the peer's certificate was not accepted: {error.verify_message}"
    reason = str(getattr(error, "reason", "") or "")
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "the peer presented no certificate"
    if isinstance(error, ssl.SSLError) and any(word in reason for word in _REFUSED_OURS):
        return f"the peer refused our certificate ({reason})"
    return ""


class _DeferredHandshakes(ssl.SSLContext):
    """A server context whose sockets shake hands when :func:`accept` says, not at accept()."""

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect and not server_side,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )


def server_context(identity: TlsIdentity | None) -> ssl.SSLContext:
    """Our Storage SCP's context: a client certificate signed by a trusted CA is required.

    Raises ValueError without an identity, OSError / ssl.SSLError when the files cannot be
    used: the SCP does not start (never falls back to plain TCP).
    """
    if identity is None:
        raise ValueError("dicom.tls.scp is on but dicom.tls has no certificate, key and CAs")
    context = _DeferredHandshakes(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(identity.ca_certificates))
    context.load_cert_chain(str(identity.certificate), str(identity.private_key))
    return context


def accept(timeout: float, event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` of a TLS acceptor: the handshake, within ``timeout`` seconds.

    A caller without a trusted certificate gets no association: the connection is closed, the
    association's thread ends at once, and a warning names the address and the reason (no
    patient data can be involved before an association).
    """
    wrapper = event.assoc.dul.socket
    sock = getattr(wrapper, "socket", None)
    if wrapper is None or not isinstance(sock, ssl.SSLSocket):
        return
    try:
        sock.settimeout(timeout)
        sock.do_handshake()
        sock.settimeout(None)
    except OSError as error:  # ssl.SSLError, a timeout, a reset: all refuse the caller
        reason = certificate_problem(error) or f"{type(error).__name__}: {error}"
        log.warning(
            "DICOM TLS connection from %s refused: %s", event.assoc.requestor.address, reason
        )
        wrapper.close()
        # The acceptor would wait acse_timeout for an A-ASSOCIATE-RQ that cannot come; "no
        # primitive" is what its wait returns on a timeout, and it then ends the association.
        event.assoc.dul.to_user_queue.put(None)  # type: ignore[arg-type]
