"""Syslog transport of audit messages: RFC 5424 messages, RFC 6587 / RFC 5425 octet counting.

IHE ITI TF-2 3.20 (Record Audit Event) sends each DICOM audit message as one syslog message:
PRI facility 10 (security/authorization) and severity 5 (notice), MSGID ``IHE+RFC-3881``, no
structured data, and the XML as MSG in UTF-8 (RFC 5424 6.4: MSG-UTF8 starts with the BOM).
Over TCP and TLS every message is framed as ``MSG-LEN SP SYSLOG-MSG`` (RFC 5425 4.3, RFC 6587
3.4.1), so the XML may contain new lines. TLS checks the collector's certificate against
``atna.ca_file`` and offers our client certificate when configured (RFC 5425 5).
"""

from __future__ import annotations

import select
import socket
import ssl
from datetime import datetime

from pacsbridge.settings.atna import AtnaSettings

FACILITY_AUTHPRIV, SEVERITY_NOTICE = 10, 5
PRI = FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE
MSGID = "IHE+RFC-3881"
BOM = b"\xef\xbb\xbf"
PROBE_SECONDS = 0.3


def _field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII, no spaces, at most ``limit`` characters, or NILVALUE."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def message(xml: bytes, at: datetime, hostname: str, app_name: str, procid: str) -> bytes:
    """One RFC 5424 SYSLOG-MSG: HEADER SP STRUCTURED-DATA SP MSG."""
    header = " ".join(
        [
            f"<{PRI}>1",
            at.isoformat(timespec="milliseconds"),
            _field(hostname, 255),
            _field(app_name, 48),
            _field(procid, 128),
            MSGID,
            "-",
        ]
    )
    return header.encode("ascii") + b" " + BOM + xml


def frame(syslog_message: bytes) -> bytes:
    """Octet counting: the length in bytes, a space, the message (RFC 5425 4.3)."""
    return str(len(syslog_message)).encode("ascii") + b" " + syslog_message


class Collector:
    """One connection to the collector, opened on first use and after a failure."""

    def __init__(self, settings: AtnaSettings) -> None:
        self.settings = settings
        self._sock: socket.socket | None = None

    def send(self, framed: bytes) -> None:
        """Write one framed message; OSError (ssl.SSLError included) when it cannot."""
        if self._sock is None or _peer_closed(self._sock):
            self.close()
            self._sock = self._connect()
        try:
            self._sock.sendall(framed)
        except OSError:
            self.close()
            raise

    def probe(self) -> None:
        """Connect as a delivery would (TLS handshake and the collector's verdict included),
        then close: ``pacsbridge check``. OSError when the collector cannot be reached."""
        self._connect().close()

    def _connect(self) -> socket.socket:
        s = self.settings
        raw = socket.create_connection((s.host, s.port), timeout=s.timeout_seconds)
        if s.transport != "tls":
            return raw
        try:
            tls = tls_context(s).wrap_socket(raw, server_hostname=s.host)
        except OSError:
            raw.close()
            raise
        _accepted(tls, s.timeout_seconds)
        return tls

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def tls_context(settings: AtnaSettings) -> ssl.SSLContext:
    """TLS 1.2 or later; the collector's certificate must chain to ``ca_file`` and name it."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.cert_file:
        key = str(settings.key_file) if settings.key_file else None
        context.load_cert_chain(str(settings.cert_file), key)
    return context


def _accepted(sock: ssl.SSLSocket, timeout: float) -> None:
    """Wait a moment for the collector's verdict on our certificate before the first write.

    With TLS 1.3 the client's side of the handshake ends before the server has checked the
    client certificate; a refusal arrives as an alert right after. Reading for a moment here
    turns it into an error instead of a first message written into a connection already lost.
    """
    sock.settimeout(min(PROBE_SECONDS, timeout))
    try:
        if sock.recv(1) == b"":
            raise ConnectionResetError(
                "the collector closed the TLS connection after the handshake (it refused our "
                "client certificate, or wants one: atna.cert_file)"
            )
    except (TimeoutError, ssl.SSLWantReadError):
        pass  # no verdict: accepted (session tickets, if any, were read)
    except OSError:
        sock.close()
        raise
    finally:
        if sock.fileno() != -1:
            sock.settimeout(timeout)


def _peer_closed(sock: socket.socket) -> bool:
    """The collector hung up (a restart): writing would vanish into a dead connection.

    A syslog collector never writes to its senders, so a readable socket means end of stream
    (or a TLS close_notify): the connection is over.
    """
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
