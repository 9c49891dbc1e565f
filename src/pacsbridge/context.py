"""What every domain needs at run time, built once per process and then frozen.

:mod:`pacsbridge.runtime` (the composition root) builds one :class:`Context` and hands it down
explicitly: settings, database sessions, the clock, the job queue, our AE, the PACS and the
sources as network peers, and the Storage SCP. Domain code never reaches for globals, never
rebuilds a peer from settings, and never finds a service by name; tests move the clock
instead of sleeping (docs/architecture.md, "Composition root").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from pacsbridge.dicomnet.peers import LocalAE, Peer, TlsIdentity
from pacsbridge.settings import Settings
from pacsbridge.settings.tls import DicomTlsSettings

if TYPE_CHECKING:
    from pacsbridge.dicomnet.scp import StorageSCP
    from pacsbridge.jobs.queue import JobQueue

log = logging.getLogger(__name__)


class Clock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class MovableClock(Clock):
    """A clock tests (and the demo) can move forward: token expiry, the 45-day cache."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = timedelta(0)
        self._fixed = start

    def now(self) -> datetime:
        base = self._fixed or datetime.now(UTC)
        return base + self._offset

    def advance(self, **delta: Any) -> None:
        self._offset += timedelta(**delta)


@dataclass(frozen=True)
class Network:
    """Our AE and the peers of the configuration, built once from settings.

    ``sources`` maps a source's configured name (the ``source`` of a retrieval request) to
    its peer, in configuration order.
    """

    local: LocalAE
    pacs: Peer
    sources: Mapping[str, Peer]

    @classmethod
    def from_settings(cls, settings: Settings) -> Network:
        d, p = settings.dicom, settings.pacs
        local = LocalAE(
            ae_title=d.ae_title,
            acse_timeout=d.acse_timeout,
            dimse_timeout=d.dimse_timeout,
            network_timeout=d.network_timeout,
            connection_timeout=d.connection_timeout,
            fast_store=d.fast_store,
            fast_receive=d.fast_receive,
            tls=_identity(d.tls),
            tls_scp=d.tls.scp,
        )
        pacs = _peer(p, p.name)
        sources = {s.name: _peer(s, s.name) for s in settings.sources}
        return cls(local=local, pacs=pacs, sources=MappingProxyType(sources))


def _peer(node: Any, name: str) -> Peer:
    """A PACS or a source (both have an AE title, host, port and their TLS choice)."""
    return Peer(
        ae_title=node.ae_title,
        host=node.host,
        port=node.port,
        name=name,
        tls=node.tls,
        tls_server_name=node.tls_server_name,
    )


def _identity(tls: DicomTlsSettings) -> TlsIdentity | None:
    if tls.cert_file is None or tls.key_file is None or tls.ca_file is None:
        return None
    return TlsIdentity(tls.cert_file, tls.key_file, tls.ca_file)


class Listener:
    """This process's Storage SCP: started by the runtime, taken over by a mover when free.

    Only one process per host can listen on ``dicom.port``. When another process already
    does (``serve`` and a separate ``worker`` on one machine), this one does without: the
    expected instances are in the database, so that process receives for everyone. When that
    process dies, the next mover here calls :meth:`ensure` and takes the port over.
    """

    def __init__(self) -> None:
        self._build: Callable[[], StorageSCP] | None = None
        self._scp: StorageSCP | None = None
        self._lock = threading.Lock()

    def serve_with(self, build: Callable[[], StorageSCP]) -> None:
        """What to listen with; the runtime sets it once, right after building the context."""
        self._build = build

    @property
    def scp(self) -> StorageSCP | None:
        return self._scp

    def ensure(self) -> StorageSCP | None:
        """Listen now unless this process already does; None when the port is taken."""
        with self._lock:
            if self._scp is None and self._build is not None:
                scp = self._build()
                try:
                    scp.start()
                except OSError as error:
                    log.warning("Storage SCP not started on %s:%s: %s", scp.host, scp.port, error)
                    return None
                self._scp = scp
            return self._scp

    def stop(self) -> None:
        with self._lock:
            scp, self._scp = self._scp, None
        if scp is not None:
            scp.stop()


@dataclass(frozen=True)
class Context:
    """The run-time services of one process, complete from the start."""

    settings: Settings
    sessions: sessionmaker[Session]
    queue: JobQueue
    network: Network
    listener: Listener = field(default_factory=Listener)
    clock: Clock = field(default_factory=Clock)

    @property
    def data_dir(self) -> Path:
        return self.settings.storage.data_dir.resolve()

    @property
    def local(self) -> LocalAE:
        return self.network.local

    @property
    def pacs(self) -> Peer:
        return self.network.pacs
