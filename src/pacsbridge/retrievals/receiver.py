"""Our Storage SCP's gate and C-STORE handler: believe no one on their word; cache what passed.

The Move Originator fields of a C-STORE are optional and a calling AE title is only a claim,
so admission rests on what we know ourselves.

**Who may call.** An association is accepted only when its calling AE title is one a
configured source stores with (``store_ae_titles``, else ``ae_title``) *and* its TCP peer
address is one of that source's (``host`` and ``store_addresses``, resolved once at start-up
and listed by ``pacsbridge config show``). Anyone else gets A-ASSOCIATE-RJ.

**What may be stored.** An instance is accepted only when

1. the command's Affected SOP Instance UID and the data set's SOP Instance UID are valid
   UIDs (PS3.5 §9.1) and equal, and the data set's Study and Series Instance UIDs are valid;
2. a study of the caller's source is being moved right now (its entry is ``moving``); and
3. its SOP Instance UID is on that study's IMAGE-level list (and its Study Instance UID is
   the study's), or, when the list is not whole (no IMAGE level, a capped C-FIND), its
   Study Instance UID is the study's, its Series Instance UID one of the SERIES-level
   answers, and its Patient ID and Issuer of Patient ID those of the STUDY-level answer.

Anything else is refused with a failure status, audited as ``scp.intruder`` (calling AE,
address, reason, the retrieval when known) and never written. Statuses: 0x0124 *Refused: Not
authorised* (PS3.7 C.5.x general status) when nobody asked for the instance; 0x0117 *Invalid
object instance* (PS3.7 C.5.x: the UID violates the construction rules) for a bad UID; 0xC000
*Error: Cannot understand* (PS3.4 B.2.3) for an unreadable data set or a data set whose UID
is not the command's. Handlers never raise (pynetdicom apps); every outcome is a named status.

Speed: the hot path of a legitimate instance touches no database row and writes no audit:
the expected lists are read into memory on a miss and at most every ``INDEX_TTL`` seconds,
refusals are audited by a thread of their own (``intruders.py``), and the file's
presence is the receipt (``cache.py``); ``settle`` records arrivals once the C-MOVE is over.
The lists live in the database, so the C-MOVE may be issued by any worker process and
received by this one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy import select

from pacsbridge import metrics, uids
from pacsbridge.context import Context
from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest
from pacsbridge.errors import StorageFull, from_os_error
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import cache, lifecycle
from pacsbridge.retrievals.intruders import Gate, IntruderAudit, claims
from pacsbridge.retrievals.lifecycle import StudyState
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, RetrievalStudy

log = logging.getLogger(__name__)

SUCCESS = 0x0000
NOT_AUTHORISED = 0x0124  # Refused: Not authorised (no running retrieval expects it)
INVALID_INSTANCE = 0x0117  # Invalid object instance (a UID breaking PS3.5 §9.1)
PROCESSING_FAILURE = 0x0110  # Processing failure (our own fault, logged)
OUT_OF_RESOURCES = 0xA700  # Refused: Out of resources (disk full)
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand (unreadable, or UIDs that disagree)
INDEX_TTL = 1.0


@dataclass(frozen=True)
class Target:
    """A study being moved: where its instances go and what its instances must say."""

    study_id: int
    study_uid: str
    folder: Path
    source: str
    by_uid: bool
    retrieval_ids: tuple[int, ...] = ()
    series_uids: frozenset[str] = frozenset()
    patient_id: str = ""
    issuers: frozenset[str] = frozenset({""})


@dataclass
class Index:
    by_sop: dict[str, Target] = field(default_factory=dict)
    #: studies whose IMAGE-level list is not whole, by Study Instance UID
    by_study: dict[str, list[Target]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    loaded_at: float = 0.0

    def retrievals_of(self, sources: frozenset[str]) -> tuple[int, ...]:
        """The live retrievals moving a study of these sources (for the audit)."""
        found = {r for t in self.targets if t.source in sources for r in t.retrieval_ids}
        return tuple(sorted(found))


class Receiver:
    """The ``on_associate`` and ``on_store`` callbacks of :class:`dicomnet.scp.StorageSCP`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.gate = Gate(ctx.settings)
        self.intruders = IntruderAudit(ctx)
        self._index = Index()
        self._lock = threading.Lock()

    def admit(self, calling_ae: str, address: str) -> bool:
        """A-ASSOCIATE-RQ: only a configured source's AE title from that source's address."""
        if self.gate.sources(calling_ae, address):
            return True
        claimed = self.gate.claims.get(calling_ae, frozenset())
        reason = "address_not_of_source" if claimed else "unknown_calling_ae"
        log.warning("rejected an association from %s at %s (%s)", calling_ae, address, reason)
        ids = self._current(force=False).retrievals_of(claimed) if claimed else ()
        self.intruders.report(
            calling_ae=calling_ae,
            address=address,
            reason=reason,
            stage="association",
            status="A-ASSOCIATE-RJ",
            retrieval_ids=ids,
        )
        return False

    def __call__(self, request: StoreRequest) -> int:
        try:
            return self._handle(request)
        except OSError as error:
            if isinstance(from_os_error(error), StorageFull):
                log.error("cache disk full: refusing C-STORE")
                return OUT_OF_RESOURCES
            log.exception("cannot write a received instance")
            return PROCESSING_FAILURE
        except Exception:  # noqa: BLE001 - a handler answers a status, never raises
            log.exception("unexpected error in the C-STORE handler")
            return PROCESSING_FAILURE

    def land(self, request: StoreRequest) -> Path | int:
        """Before any data is written (the fast path): where it may go, or the refusal.

        From the command alone: the caller must be a source, the Affected SOP Instance UID
        valid and listed for a study of that source being moved (or such a study's list not
        whole). The answer is a temporary name of ours in that study's folder; every check of
        :meth:`_handle` still runs on the whole file before it is moved into place.
        """
        try:
            sources = self.gate.sources(request.calling_ae, request.address)
            if not sources:
                return self._refuse(request, "caller_not_a_source", NOT_AUTHORISED, sources)
            if not uids.is_valid(request.sop_instance_uid):
                return self._refuse(request, "invalid_command_uid", INVALID_INSTANCE, sources)
            for fresh in (False, True):
                folder = _landing(request.sop_instance_uid, sources, self._current(force=fresh))
                if folder is not None:
                    return cache.part_path(folder, request.sop_instance_uid)
            return self._refuse(request, "not_expected", NOT_AUTHORISED, sources)
        except Exception:  # noqa: BLE001 - a handler answers a status, never raises
            log.exception("unexpected error in the C-STORE landing")
            return PROCESSING_FAILURE

    def _handle(self, request: StoreRequest) -> int:
        """Check the caller and the UIDs, then match in the index and write.

        On anything but a live target the index is reloaded once and matched again. A miss
        may be a move that just started. A hit may be stale: the same study retrieved again
        after expiry has a new entry, while the index (up to ``INDEX_TTL`` old) still points
        at the old one, whose folder expiry deleted. ``cache`` creates a study's folder
        before its C-MOVE and deletes it at expiry or failure, so a missing folder means
        "stale", and the receiver never creates one itself.
        """
        sources = self.gate.sources(request.calling_ae, request.address)
        if not sources:  # the association gate let it in: settings changed, or no gate
            return self._refuse(request, "caller_not_a_source", NOT_AUTHORISED, sources)
        try:
            header = request.header()
        except Exception:  # noqa: BLE001 - an unreadable data set is refused, not a crash
            return self._refuse(request, "unreadable", CANNOT_UNDERSTAND, sources)
        problem = _uid_problem(request.sop_instance_uid, header)
        if problem:
            return self._refuse(request, problem[0], problem[1], sources, header)
        reason = "not_expected"
        for fresh in (False, True):
            target, reason = _match(header, sources, self._current(force=fresh))
            if target is not None and target.folder.is_dir():
                final = cache.instance_path(target.folder, header["SOPInstanceUID"])
                _write(request, final)
                cache.remember(header["SOPInstanceUID"])
                _count(target.source, final)
                return SUCCESS
        return self._refuse(request, reason or "study_not_moving", NOT_AUTHORISED, sources, header)

    def _refuse(
        self,
        request: StoreRequest,
        reason: str,
        status: int,
        sources: frozenset[str],
        header: dict[str, str] | None = None,
    ) -> int:
        log.warning(
            "refused a C-STORE from %s at %s (%s)", request.calling_ae, request.address, reason
        )
        claimed = sources or self.gate.claims.get(request.calling_ae, frozenset())
        self.intruders.report(
            calling_ae=request.calling_ae,
            address=request.address,
            reason=reason,
            stage="c-store",
            status=f"0x{status:04X}",
            retrieval_ids=self._index.retrievals_of(claimed),
            **claims(request, header or {}),
        )
        return status

    def _current(self, force: bool) -> Index:
        with self._lock:
            age = time.monotonic() - self._index.loaded_at
            if force or age > INDEX_TTL:
                self._index = load_index(self.ctx)
            return self._index


def _uid_problem(command_uid: str, header: dict[str, str]) -> tuple[str, int] | None:
    """Why the UIDs of a C-STORE cannot be trusted, with the status to answer; None: fine."""
    if not uids.is_valid(command_uid):
        return "invalid_command_uid", INVALID_INSTANCE
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not uids.is_valid(header[keyword]):
            return f"invalid_{keyword}", INVALID_INSTANCE
    if header["SOPInstanceUID"] != command_uid:
        return "uid_differs_from_command", CANNOT_UNDERSTAND
    return None


def _landing(sop_instance_uid: str, sources: frozenset[str], index: Index) -> Path | None:
    """The folder an instance may be written into before its data set is read, or None."""
    target = index.by_sop.get(sop_instance_uid)
    if target is not None and target.source in sources and target.folder.is_dir():
        return target.folder
    for targets in index.by_study.values():
        for target in targets:
            if target.source in sources and target.folder.is_dir():
                return target.folder  # the data set's UIDs decide the study afterwards
    return None


def _match(
    header: dict[str, str], sources: frozenset[str], index: Index
) -> tuple[Target | None, str]:
    """The study this instance belongs to, or None and why not."""
    target = index.by_sop.get(header["SOPInstanceUID"])
    if target is not None and target.source in sources:
        if header["StudyInstanceUID"] == target.study_uid:
            return target, ""
        return None, "study_differs_from_listed"
    reason = "not_expected"
    for target in index.by_study.get(header["StudyInstanceUID"], []):
        if target.source in sources:
            reason = _identity_problem(header, target)
            if not reason:
                return target, ""
    return None, reason


def _identity_problem(header: dict[str, str], target: Target) -> str:
    """Admission by study: series, patient and issuer must be what the C-FINDs answered."""
    if header["SeriesInstanceUID"] not in target.series_uids:
        return "series_not_listed"
    if header["PatientID"] != target.patient_id:
        return "patient_id_differs"
    if header["IssuerOfPatientID"] not in target.issuers:
        return "issuer_differs"
    return ""


def _count(source: str, final: Path) -> None:
    """One more instance and its bytes received from ``source`` (docs/operations.md)."""
    metrics.INSTANCES_RECEIVED.labels(source).inc()
    metrics.BYTES_RECEIVED.labels(source).inc(final.stat().st_size)


def _write(request: StoreRequest, final: Path) -> None:
    """Write beside, then rename: a file in the cache is always whole (it is the receipt)."""
    part = cache.part_path(final.parent, request.sop_instance_uid)
    request.write_to(part)
    os.replace(part, final)


def load_index(ctx: Context) -> Index:
    """Every study being moved now, with what its instances must say."""
    index = Index(loaded_at=time.monotonic())
    moving = select(CachedStudy).where(
        CachedStudy.state == StudyState.MOVING, ledger.live(CachedStudy, ctx.clock.now())
    )
    with ctx.sessions() as session:
        studies = list(session.scalars(moving))
        users = _retrievals_of(session, [s.id for s in studies])
        for study in studies:
            target = _target_of(ctx, study, users.get(study.id, ()))
            index.targets.append(target)
            if not target.by_uid:
                index.by_study.setdefault(target.study_uid, []).append(target)
            query = select(ExpectedInstance.sop_instance_uid).where(
                ExpectedInstance.cached_study_id == study.id
            )
            for sop in session.scalars(query):
                index.by_sop[sop] = target
    return index


def _retrievals_of(session: Any, study_ids: list[int]) -> dict[int, tuple[int, ...]]:
    if not study_ids:
        return {}
    query = (
        select(RetrievalStudy.cached_study_id, RetrievalStudy.retrieval_id)
        .join(Retrieval)
        .where(RetrievalStudy.cached_study_id.in_(study_ids))
        .where(Retrieval.state.in_(lifecycle.RUNNING))
        .order_by(RetrievalStudy.retrieval_id)
    )
    found: dict[int, tuple[int, ...]] = {}
    for study_id, retrieval_id in session.execute(query):
        found[study_id] = (*found.get(study_id, ()), retrieval_id)
    return found


def _target_of(ctx: Context, study: CachedStudy, retrieval_ids: tuple[int, ...]) -> Target:
    """The study's admission rules, from its C-FIND answers as stored by ``plan``.

    The issuer must be the STUDY-level answer's; a PACS that answered none gives no issuer
    to compare with, so the file's must then be empty or the one the request named.
    """
    answered = _study_answer(study)
    issuer = uids.clean(answered.get("IssuerOfPatientID", ""))
    return Target(
        study_id=study.id,
        study_uid=study.study_instance_uid,
        folder=cache.study_dir(ctx, study.id),
        source=study.source,
        by_uid=study.uid_list_complete,
        retrieval_ids=retrieval_ids,
        series_uids=frozenset(_series_uids(study)),
        patient_id=uids.clean(answered.get("PatientID", "")),
        issuers=frozenset({issuer}) if issuer else frozenset({"", study.issuer}),
    )


def _study_answer(study: CachedStudy) -> Dataset:
    try:
        return Dataset.from_json(study.study_metadata.get("study") or {})
    except Exception:  # noqa: BLE001 - no readable answer: nothing can match it
        return Dataset()


def _series_uids(study: CachedStudy) -> list[str]:
    found = []
    for raw in study.study_metadata.get("series") or []:
        value = uids.clean(Dataset.from_json(raw).get("SeriesInstanceUID", ""))
        if uids.is_valid(value):
            found.append(value)
    return found


def storage_scp(ctx: Context) -> StorageSCP:
    """Our Storage SCP on ``dicom.host:port`` with a new receiver (not listening yet).

    The runtime hands this to ``ctx.listener``, which starts it (serve, demo, worker) and
    stops it. The sources' hosts are resolved here, once per start: a source whose host does
    not resolve can store nothing until the next start.
    """
    d = ctx.settings.dicom
    receiver = Receiver(ctx)
    return StorageSCP(
        ctx.local,
        d.host,
        d.port,
        receiver,
        receiver.admit,
        on_stop=receiver.intruders.stop,
        on_land=receiver.land,
    )
