"""What every domain needs at run time: settings, database sessions, the clock, the job queue.

Built once by :mod:`pacsbridge.runtime` (the composition root) and handed down explicitly, so
domain code never reaches for globals and tests can move the clock instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from pacsbridge.settings import Settings

if TYPE_CHECKING:
    from pacsbridge.jobs.queue import JobQueue


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


@dataclass
class Context:
    """The run-time services of one process."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=Clock)
    queue: JobQueue | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self):  # noqa: ANN201 - Path
        return self.settings.storage.data_dir.resolve()


def local_ae(settings: Settings):  # noqa: ANN201 - dicomnet.LocalAE
    """Our AE as the network layer wants it."""
    from pacsbridge.dicomnet.peers import LocalAE

    d = settings.dicom
    return LocalAE(
        ae_title=d.ae_title,
        acse_timeout=d.acse_timeout,
        dimse_timeout=d.dimse_timeout,
        network_timeout=d.network_timeout,
        connection_timeout=d.connection_timeout,
    )


def pacs_peer(settings: Settings):  # noqa: ANN201 - dicomnet.Peer
    """The hospital PACS that receives imports."""
    from pacsbridge.dicomnet.peers import Peer

    p = settings.pacs
    return Peer(ae_title=p.ae_title, host=p.host, port=p.port, name=p.name)
