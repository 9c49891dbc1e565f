"""Invio al PACS: C-STORE every instance not yet stored, then make the PACS confirm them all.

Per-instance state lives in ``import_instances``: a retry sends only what is missing. Outcomes
that can pass (PACS down, association refused, timeout) make the phase retriable; a permanent
refusal names the instance and its status, the others are still stored, and the phase fails.
The phase is OK only after an IMAGE-level C-FIND per study lists every SOP Instance UID
(a C-STORE success is the PACS's word for one instance, not proof the study is indexed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from sqlalchemy import update

from pacsbridge import audit, metrics
from pacsbridge.dicomnet.find import SentQuery, find_instance_uids
from pacsbridge.dicomnet.store import StoreOutcome, c_store
from pacsbridge.errors import PeerRefused, PeerUnavailable, StoreNotConfirmed
from pacsbridge.imports import lifecycle
from pacsbridge.imports.models import ImportInstance
from pacsbridge.imports.pipeline.base import Done, Job

BATCH = 25
CANCEL_POLL_SECONDS = 0.2  # how often the sending threads ask whether the import was cancelled
CONFIRM_QUERIES = 4  # IMAGE-level C-FINDs before instances count as not confirmed
CONFIRM_PAUSE_SECONDS = 0.5
NAMED = 20  # SOP Instance UIDs a not-confirmed failure names in its detail
#: An instance's detail when the PACS does not list it: a catalogue key, said where it is read.
NOT_CONFIRMED = "store.instance_not_confirmed"


def run(job: Job) -> Done:
    pending = job.instances(state="pending")
    if pending:
        _audit(job, "store.started")
        _store(job, pending)
    failed = job.instances(state="failed")
    if failed:
        detail = "; ".join(f"{i.path}: {i.detail}" for i in failed[:5])
        _audit(job, "store.completed", f"{len(failed)} refused by the PACS")
        raise PeerRefused(detail, peer=job.ctx.settings.pacs.name, count=len(failed))
    _confirm_on_pacs(job)
    _audit(job, "store.completed")
    return Done("done.send", {"count": len(job.instances())})


def _audit(job: Job, kind: str, refused: str = "") -> None:
    """``store.started`` / ``store.completed``: patient, studies and SOP classes with counts
    (the ATNA Begin Transferring and DICOM Instances Transferred messages, docs/atna.md)."""
    classes: dict[str, dict[str, int]] = {}
    for instance in job.instances():
        counts = classes.setdefault(instance.study_instance_uid, {})
        counts[instance.sop_class_uid] = counts.get(instance.sop_class_uid, 0) + 1
    launch = job.launch
    with job.ctx.sessions.begin() as session:
        audit.record(
            session,
            job.ctx.clock.now(),
            kind,
            import_id=job.import_id,
            outcome="error" if refused else "ok",
            message=refused,
            patient_id=launch.patient_id,
            issuer=launch.issuer,
            accession_number=launch.accession_number,
            study_instance_uids=sorted(classes),
            sop_classes=classes,
        )


def _store(job: Job, pending: list[ImportInstance]) -> None:
    """Send on one set of associations; a cancel stops it before the next instance."""
    lifecycle.stop_if_cancelled(job.ctx, job.import_id)
    _store_all(job, pending, _CancelWatch(job))
    lifecycle.stop_if_cancelled(job.ctx, job.import_id)


class _CancelWatch:
    """Asks the database at most every CANCEL_POLL_SECONDS, from any sending thread."""

    def __init__(self, job: Job) -> None:
        self.job, self.asked_at, self.stopped = job, 0.0, False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if not self.stopped and now - self.asked_at >= CANCEL_POLL_SECONDS:
                self.asked_at = now
                self.stopped = lifecycle.cancelled(self.job.ctx, self.job.import_id)
            return self.stopped


def _store_all(job: Job, pending: list[ImportInstance], stop: _CancelWatch) -> None:
    by_path = {str(job.source_path(i)): i for i in pending}
    settings = job.ctx.settings
    outcomes = c_store(
        job.ctx.local,
        job.ctx.pacs,
        [job.source_path(i) for i in pending],
        associations=settings.pacs.store_associations or settings.dicom.store_associations,
        should_stop=stop,
    )
    retriable = _record(job, by_path, outcomes)
    if retriable:
        raise PeerUnavailable(retriable, peer=settings.pacs.name)


def _record(job: Job, by_path: dict[str, ImportInstance], outcomes: Iterable[StoreOutcome]) -> str:
    """Write outcomes in batches (and beat); return the last retriable reason, if any."""
    batch: list[tuple[ImportInstance, StoreOutcome]] = []
    retriable = ""
    for outcome in outcomes:
        batch.append((by_path[str(outcome.path)], outcome))
        if not outcome.ok and outcome.retriable:
            retriable = outcome.detail or "PACS unreachable"
        if len(batch) >= BATCH:
            _write(job, batch)
            batch = []
    _write(job, batch)
    return retriable


def _write(job: Job, batch: list[tuple[ImportInstance, StoreOutcome]]) -> None:
    if not batch:
        return
    now = job.ctx.clock.now()
    with job.ctx.sessions.begin() as session:
        for instance, outcome in batch:
            state = "stored" if outcome.ok else ("pending" if outcome.retriable else "failed")
            session.execute(
                update(ImportInstance)
                .where(ImportInstance.id == instance.id)
                .values(state=state, status=outcome.status, detail=(outcome.detail or "")[:500])
            )
            if outcome.transcoded:
                audit.record(
                    session,
                    now,
                    "store.transcoded",
                    import_id=job.import_id,
                    sop_instance_uid=instance.sop_instance_uid,
                    transfer_syntax_uid=instance.transfer_syntax_uid,
                )
    _count(job.ctx.settings.pacs.name, batch)
    job.beat()


def _count(peer: str, batch: list[tuple[ImportInstance, StoreOutcome]]) -> None:
    """Stored instances and bytes, and failed C-STOREs by status (docs/operations.md)."""
    for instance, outcome in batch:
        if outcome.ok:
            metrics.INSTANCES_STORED.labels(peer).inc()
            metrics.BYTES_STORED.labels(peer).inc(instance.size_bytes)
        else:
            metrics.STORE_FAILURES.labels(peer, metrics.dicom_status(outcome.status)).inc()


def _confirm_on_pacs(job: Job) -> None:
    """IMAGE-level C-FIND per study; whatever is still missing goes back to pending.

    Many PACS answer C-STORE before their index lists the instance (seen once in CI with
    Orthanc under load), so a study is asked again a few times before anything is re-sent.
    """
    missing: list[ImportInstance] = []
    for study_uid in job.selected_uids():
        missing += _missing_after_settling(job, study_uid)
    if missing:
        with job.ctx.sessions.begin() as session:
            session.execute(
                update(ImportInstance)
                .where(ImportInstance.id.in_([i.id for i in missing]))
                .values(state="pending", detail=NOT_CONFIRMED)
            )
        raise StoreNotConfirmed(_not_listed(missing), missing=len(missing))


def _not_listed(missing: list[ImportInstance]) -> str:
    """The detail names the SOP Instance UIDs the PACS does not list (the first NAMED)."""
    named = ", ".join(i.sop_instance_uid for i in missing[:NAMED])
    more = f" and {len(missing) - NAMED} more" if len(missing) > NAMED else ""
    return f"{len(missing)} not listed by the PACS: {named}{more}"


def _missing_after_settling(job: Job, study_uid: str) -> list[ImportInstance]:
    expected = [i for i in job.instances() if i.study_instance_uid == study_uid]
    for attempt in range(CONFIRM_QUERIES):
        sent: list[SentQuery] = []
        try:
            held = find_instance_uids(job.ctx.local, job.ctx.pacs, study_uid, sent=sent)
        finally:
            _audit_queries(job, study_uid, sent)
        missing = [i for i in expected if i.sop_instance_uid not in held]
        job.beat()
        if not missing or attempt == CONFIRM_QUERIES - 1:
            return missing
        time.sleep(CONFIRM_PAUSE_SECONDS * (attempt + 1))
    return []


def _audit_queries(job: Job, study_uid: str, sent: list[SentQuery]) -> None:
    """``store.queried``: each C-FIND that asked the PACS to list a study's instances, one
    event per C-FIND request, not per answer (an ATNA Query, docs/atna.md)."""
    launch, now = job.launch, job.ctx.clock.now()
    with job.ctx.sessions.begin() as session:
        for one in sent:
            audit.record(
                session,
                now,
                "store.queried",
                import_id=job.import_id,
                outcome="ok" if one.ok else "error",
                level=one.level,
                study_instance_uid=study_uid,
                patient_id=launch.patient_id,
                issuer=launch.issuer,
                query=one.identifier,
            )
