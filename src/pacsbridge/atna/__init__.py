"""IHE ATNA Secure Node: DICOM audit messages (PS3.15 A.5) sent by syslog to a collector.

``events`` maps audit kinds to message builders, ``outbox`` spools each message in the
transaction of its audit event, ``sender`` delivers the spool over ``syslog`` (TCP or TLS).
The runtime calls :func:`install` when ``atna.enabled``; nothing else knows this package
(docs/atna.md).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from pacsbridge.atna.outbox import install as _install_outbox
from pacsbridge.atna.sender import Clock, Sender
from pacsbridge.settings import Settings


def install(
    sessions: sessionmaker[Session], settings: Settings, clock: Clock | None = None
) -> Sender | None:
    """Spool messages from these sessions; the sender to start, or None when disabled."""
    if not settings.atna.enabled:
        return None
    _install_outbox(sessions, settings)
    return Sender(sessions, settings, clock)
