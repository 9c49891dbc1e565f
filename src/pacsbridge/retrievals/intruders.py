"""Who our Storage SCP lets in, and the audit of those it refuses (``scp.intruder``).

A calling AE title is a claim anyone can make; the address a connection comes from is what
the network tells us. So each source is known by its store AE titles (``store_ae_titles``,
else ``ae_title``) *and* its addresses: ``host`` and ``store_addresses``, resolved once at
start-up (a PACS that changes address needs a restart) and shown by ``pacsbridge config show``.

Refusals are audited by one thread of their own: a refusal answers at once and never waits
for the database, so a flood of forged C-STOREs holds neither pynetdicom's threads nor the
write lock the movers need, and a legitimate instance never pays for any audit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.dicomnet import scp as dicom_scp
from pacsbridge.dicomnet.scp import StoreRequest
from pacsbridge.settings import Settings, SourceSettings

log = logging.getLogger(__name__)
MAX_AUDIT_BACKLOG = 10_000
MAX_CLAIM = 80  # characters of a claimed value kept in the audit (it may be anything)


class Gate:
    """Calling AE title and address → the sources it may be, from the settings at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.addresses = {s.name: store_addresses_of(s) for s in settings.sources}
        self.claims: dict[str, frozenset[str]] = {}
        self._table: dict[tuple[str, str], frozenset[str]] = {}
        for source in settings.sources:
            for title in store_titles(source):
                self.claims[title] = self.claims.get(title, frozenset()) | {source.name}
                for address in self.addresses[source.name]:
                    key = (title, address)
                    self._table[key] = self._table.get(key, frozenset()) | {source.name}

    def sources(self, calling_ae: str, address: str) -> frozenset[str]:
        return self._table.get((calling_ae, address), frozenset())


def store_titles(source: SourceSettings) -> list[str]:
    return [t.strip() for t in (source.store_ae_titles or [source.ae_title])]


def store_addresses_of(source: SourceSettings) -> frozenset[str]:
    return dicom_scp.resolve([source.host, *source.store_addresses])


def store_addresses(settings: Settings) -> dict[str, list[str]]:
    """Source → the addresses it may store from, as resolved now (for ``config show``)."""
    return {s.name: sorted(store_addresses_of(s)) for s in settings.sources}


class IntruderAudit:
    """``scp.intruder`` events, written by one thread of their own.

    A refusal answers at once and never waits for the database (a flood of forged C-STOREs
    must not hold pynetdicom's threads, nor the write lock the movers need). The backlog is
    bounded: beyond ``MAX_AUDIT_BACKLOG`` pending events, further ones are counted and logged.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.dropped = 0
        self._queue: queue.Queue[tuple[Any, dict[str, Any]] | None] = queue.Queue(MAX_AUDIT_BACKLOG)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def report(self, **details: Any) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait((self.ctx.clock.now(), details))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:  # a flood must not flood the log
                log.warning("audit backlog full: %d refusals not audited", self.dropped)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every reported event is written (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def stop(self) -> None:
        if self._thread is not None:
            self.drain()
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scp-intruder-audit")
                self._thread.daemon = True
                self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item)
            except Exception:  # noqa: BLE001 - the writer thread must outlive one bad event
                log.exception("cannot audit a refusal of our Storage SCP")
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _write(self, at: Any, details: dict[str, Any]) -> None:
        ids = details.pop("retrieval_ids", ())
        with self.ctx.sessions.begin() as session:
            audit.record(
                session,
                at,
                "scp.intruder",
                retrieval_id=ids[0] if ids else None,
                actor=str(details.get("calling_ae", "")),
                outcome="refused",
                code=str(details.pop("status", "")),
                message=str(details.get("reason", "")),
                retrievals=list(ids),
                **details,
            )


def claims(request: StoreRequest, header: dict[str, str]) -> dict[str, str]:
    """What the refused C-STORE claimed, shortened (the audit log may hold patient data)."""
    claimed = {"sop_instance_uid": request.sop_instance_uid, "sop_class_uid": request.sop_class_uid}
    for keyword, name in (
        ("SOPInstanceUID", "dataset_sop_instance_uid"),
        ("StudyInstanceUID", "study_instance_uid"),
        ("SeriesInstanceUID", "series_instance_uid"),
        ("PatientID", "patient_id"),
        ("IssuerOfPatientID", "issuer"),
    ):
        if keyword in header:
            claimed[name] = header[keyword]
    return {k: str(v)[:MAX_CLAIM] for k, v in claimed.items()}
