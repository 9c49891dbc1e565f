"""The background sender: spooled messages to the collector, in order, at least once.

One thread per process; a lease row (``atna_sender``) lets one sender of the cluster work at a
time, so messages leave in the order of their ids. A message is deleted only after it was
written to the collector's connection, so a crash in between sends it again (at least once;
RFC 5425 has no acknowledgement, so "written" is the most a sender can know). A collector that
is down or refuses our TLS is logged once per outage (the host and the reason, never the
message), counted, and asked again every ``atna.retry_seconds``; imports never wait for it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pacsbridge import metrics
from pacsbridge.atna import syslog
from pacsbridge.atna.outbox import AtnaMessage, AtnaSender
from pacsbridge.settings import Settings

log = logging.getLogger(__name__)


class Clock(Protocol):
    """What the sender needs of the run-time clock (``pacsbridge.context.Clock``)."""

    def now(self) -> datetime: ...


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


BATCH = 100
LEASE_SECONDS = 60


class Sender:
    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, clock: Clock | None = None
    ) -> None:
        self.sessions, self.settings = sessions, settings.atna
        self.clock: Clock = clock or _WallClock()
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.collector = syslog.Collector(self.settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = ""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="atna-sender", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.timeout_seconds + 5)
            self._thread = None
        self.collector.close()
        self._release()

    def _release(self) -> None:
        """A stopping sender hands the lease on at once (another process may be waiting)."""
        with self.sessions.begin() as session:
            row = session.get(AtnaSender, 1, with_for_update=True)
            if row is not None and row.holder == self.name:
                row.holder, row.until = "", self.clock.now()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception as error:  # noqa: BLE001 - the thread must outlive a bad moment
                log.error("ATNA sender: %s", type(error).__name__)
                sent = 0
            if not sent:
                self._stop.wait(self._pause())

    def _pause(self) -> float:
        return self.settings.retry_seconds if self._failing else 0.2

    def run_once(self) -> int:
        """Send one batch if this sender holds the lease; the number written."""
        if not self._lease():
            return 0
        with self.sessions() as session:
            query = select(AtnaMessage.id, AtnaMessage.xml).order_by(AtnaMessage.id).limit(BATCH)
            batch = list(session.execute(query))
        sent: list[int] = []
        try:
            for row_id, xml in batch:
                self.collector.send(self._framed(xml))
                sent.append(row_id)
                metrics.ATNA_SENT.inc()
        except OSError as error:
            self._failed(error)
        finally:
            self._forget(sent)
        if sent and self._failing:
            log.info("ATNA collector %s:%s reached again", self.settings.host, self.settings.port)
            self._failing = ""
        return len(sent)

    def _framed(self, xml: bytes) -> bytes:
        message = syslog.message(
            xml, self.clock.now(), socket.gethostname(), self.settings.app_name, str(os.getpid())
        )
        return syslog.frame(message)

    def _failed(self, error: OSError) -> None:
        """Logged when an outage starts or its reason changes (no message content)."""
        metrics.ATNA_SEND_FAILURES.inc()
        reason = f"{type(error).__name__}: {error}"
        if reason != self._failing:
            s = self.settings
            log.warning(
                "ATNA collector %s:%s (%s) not reached, messages stay spooled: %s",
                s.host,
                s.port,
                s.transport,
                reason,
            )
        self._failing = reason

    def _forget(self, ids: list[int]) -> None:
        if ids:
            with self.sessions.begin() as session:
                session.execute(delete(AtnaMessage).where(AtnaMessage.id.in_(ids)))

    def _lease(self) -> bool:
        """Hold (or take over an expired) lease of the one row of ``atna_sender``."""
        now = self.clock.now()
        try:
            with self.sessions.begin() as session:
                row = session.get(AtnaSender, 1, with_for_update=True)
                if row is None:
                    session.add(AtnaSender(id=1, holder=self.name, until=_later(now)))
                    return True
                if row.holder != self.name and row.until > now:
                    return False
                row.holder, row.until = self.name, _later(now)
                return True
        except IntegrityError:
            return False  # another node created the row a moment ago


def _later(now):  # noqa: ANN001, ANN202 - datetime
    return now + timedelta(seconds=LEASE_SECONDS)
