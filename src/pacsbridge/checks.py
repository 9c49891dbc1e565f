"""`pacsbridge check`: is this installation able to work? Config, PACS, sources, HL7, database,
the staff directory when directory sign-in is on (docs/staff.md), and the ATNA collector when
the audit trail is on (docs/atna.md)."""

from __future__ import annotations

import socket

from sqlalchemy.exc import SQLAlchemyError

from pacsbridge.atna import syslog
from pacsbridge.context import Network
from pacsbridge.db import migrate
from pacsbridge.db.engine import make_engine
from pacsbridge.dicomnet import tls
from pacsbridge.dicomnet.echo import c_echo
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import DirectoryUnavailable, PeerError, PeerTlsRefused
from pacsbridge.messages import text
from pacsbridge.settings import Settings
from pacsbridge.staff import directory

Result = tuple[str, bool, str]


def run_all(settings: Settings) -> list[Result]:
    network = Network.from_settings(settings)
    results = [_keys(settings), _database(settings)]
    if network.local.tls is not None:
        results.append(_tls_files(network))
    results.append(_echo(network, "PACS", network.pacs))
    for name, peer in network.sources.items():
        results.append(_echo(network, f"source {name}", peer))
    for name, endpoint in (("HL7 merge", settings.merge), ("HL7 RIS", settings.ris.notify)):
        if endpoint.enabled:
            results.append(_tcp(name, endpoint.host, endpoint.port))
    if settings.staff.directory.enabled:
        results.append(staff_directory(settings))
    if settings.atna.enabled:
        results.append(atna_collector(settings))
    return results


def atna_collector(settings: Settings) -> Result:
    """The ATNA collector accepts a connection as the sender makes it (TLS: our CA trusts its
    certificate, and it accepts ours); says so when audit messages would cross in clear."""
    atna = settings.atna
    where = f"{atna.host}:{atna.port} ({atna.transport})"
    try:
        syslog.Collector(atna).probe()
    except OSError as error:  # ssl.SSLError is an OSError
        said = getattr(error, "reason", None) or error.strerror or type(error).__name__
        return ("ATNA collector", False, f"{where}: {said}")
    detail = f"{where} accepts us"
    if atna.transport == "tcp":
        detail += "; warning: tcp sends the audit messages, patient data included, in clear"
    return ("ATNA collector", True, detail)


def staff_directory(settings: Settings) -> Result:
    """The directory answers and the service account binds; says so when passwords would
    cross the network in clear (ldap:// without StartTLS)."""
    config = settings.staff.directory
    try:
        detail = directory.check(config)
    except DirectoryUnavailable as error:
        return ("staff directory", False, f"{config.url}: {error.detail or error.code}")
    if config.url.lower().startswith("ldap://") and not config.start_tls:
        detail += "; warning: ldap:// without start_tls sends passwords in clear"
    return ("staff directory", True, detail)


def _keys(settings: Settings) -> Result:
    ok = bool(settings.ris.api_keys or settings.fse.api_keys)
    return ("API keys", ok, "configured" if ok else "no RIS or FSE key: nobody can call us")


def _database(settings: Settings) -> Result:
    try:
        behind = migrate.pending(make_engine(settings.database_url))
    except SQLAlchemyError as error:
        return ("database", False, type(error).__name__)
    return ("database", not behind, "pending migrations" if behind else "up to date")


def _tls_files(network: Network) -> Result:
    """Our certificate, its key and the trusted CAs load together (PS3.15 Annex B needs all)."""
    try:
        tls.server_context(network.local.tls)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        said = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        return ("DICOM TLS", False, f"dicom.tls files unusable: {type(error).__name__}: {said}")
    return ("DICOM TLS", True, "certificate, key and trusted CAs load")


def _echo(network: Network, name: str, peer: Peer) -> Result:
    try:
        c_echo(network.local, peer)
    except PeerTlsRefused as error:  # whose certificate and why: what the administrator fixes
        said = f"{error.code}: {text(error.message_key, **error.params)} ({error.detail})"
        return (name, False, f"C-ECHO {_address(peer)}: {said}")
    except PeerError as error:
        return (name, False, f"C-ECHO {_address(peer)}: {error.code}")
    return (name, True, f"C-ECHO {_address(peer)} ok")


def _address(peer: Peer) -> str:
    return f"{peer.ae_title}@{peer.host}:{peer.port}{' (TLS)' if peer.tls else ''}"


def _tcp(name: str, host: str, port: int) -> Result:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        return (name, False, f"{host}:{port}: {error.strerror or error}")
    return (name, True, f"{host}:{port} reachable")
