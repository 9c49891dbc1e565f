"""Our Storage SCP's C-STORE handler: admit only what a running retrieval expects; cache it.

Admission (issue 5): the Move Originator fields of a C-STORE are optional, so we match on
what we know ourselves. An instance is accepted when

1. the calling AE is one a configured source stores with (``store_ae_titles``, else its AE),
2. a study of that source is being moved right now (its entry is ``moving``), and
3. its SOP Instance UID is on that study's IMAGE-level list, or, when the list is not whole
   (no IMAGE level, a capped C-FIND), the data set's Study Instance UID is that study's.

Anything else is refused with 0x0124 *Refused: Not authorised* (PS3.7 C.5.x general status):
nobody asked for it. Handlers never raise (pynetdicom apps); every outcome is a named status.

Speed: the hot path touches no database row. The expected lists are read into memory on a
miss and at most every ``INDEX_TTL`` seconds, and the file's presence is the receipt
(``cache.py``); the mover records arrivals once the C-MOVE is over. The lists live in the
database, so the C-MOVE may be issued by any worker process and received by this one.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pacsbridge.context import Context, local_ae
from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest
from pacsbridge.retrievals import cache
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance

log = logging.getLogger(__name__)

SUCCESS = 0x0000
NOT_AUTHORISED = 0x0124  # Refused: Not authorised (no running retrieval expects it)
PROCESSING_FAILURE = 0x0110  # Processing failure (our own fault, logged)
OUT_OF_RESOURCES = 0xA700  # Refused: Out of resources (disk full)
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand (no Study Instance UID to match)
INDEX_TTL = 1.0


@dataclass(frozen=True)
class Target:
    """A study being moved: where its instances go and who may send them."""

    study_id: int
    study_uid: str
    folder: Path
    ae_titles: frozenset[str]
    by_uid: bool


@dataclass
class Index:
    by_sop: dict[str, Target] = field(default_factory=dict)
    by_study: dict[str, list[Target]] = field(default_factory=dict)
    loaded_at: float = 0.0


class Receiver:
    """The ``on_store`` callback of :class:`dicomnet.scp.StorageSCP`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._index = Index()
        self._lock = threading.Lock()

    def __call__(self, request: StoreRequest) -> int:
        try:
            return self._handle(request)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                log.error("cache disk full: refusing C-STORE")
                return OUT_OF_RESOURCES
            log.exception("cannot write a received instance")
            return PROCESSING_FAILURE
        except Exception:  # noqa: BLE001 - a handler answers a status, never raises
            log.exception("unexpected error in the C-STORE handler")
            return PROCESSING_FAILURE

    def _handle(self, request: StoreRequest) -> int:
        """Match in the index; on anything but a live target, reload it once and match again.

        A miss may be a move that just started. A hit may be stale: the same study retrieved
        again after expiry has a new entry, while the index (up to ``INDEX_TTL`` old) still
        points at the old one, whose folder expiry deleted. The mover creates a study's
        folder before its C-MOVE and expiry or failure deletes it, so a missing folder means
        "stale", and the receiver never creates one itself.
        """
        sop = str(request.sop_instance_uid)
        found: Target | int | None = None
        for fresh in (False, True):
            found = _match(request, sop, self._current(force=fresh))
            if isinstance(found, Target) and found.folder.is_dir():
                _write(request, found.folder, sop)
                return SUCCESS
        if isinstance(found, int):
            return found
        log.warning("refused an unexpected instance from %s", request.calling_ae)
        return NOT_AUTHORISED

    def _current(self, force: bool) -> Index:
        with self._lock:
            age = time.monotonic() - self._index.loaded_at
            if force or age > INDEX_TTL:
                self._index = load_index(self.ctx)
            return self._index


def _match(request: StoreRequest, sop: str, index: Index) -> Target | int | None:
    target = index.by_sop.get(sop)
    if target is not None and request.calling_ae in target.ae_titles:
        return target if _same_study(request, target) else NOT_AUTHORISED
    if index.by_study:
        return _by_study(request, index)
    return None


def _same_study(request: StoreRequest, target: Target) -> bool:
    try:
        return request.study_instance_uid == target.study_uid
    except Exception:  # noqa: BLE001 - an unreadable data set simply does not match
        return False


def _by_study(request: StoreRequest, index: Index) -> Target | int | None:
    """Admission by study, for studies whose IMAGE-level list is not whole."""
    try:
        study_uid = request.study_instance_uid
    except Exception:  # noqa: BLE001
        return CANNOT_UNDERSTAND
    for target in index.by_study.get(study_uid, []):
        if request.calling_ae in target.ae_titles:
            return target
    return None


def _write(request: StoreRequest, folder: Path, sop: str) -> None:
    """Write beside, then rename: a file in the cache is always whole (it is the receipt)."""
    final = cache.instance_path(folder, sop)
    part = folder / f"{sop}.{threading.get_ident()}{cache.PART}"
    request.write_to(part)
    os.replace(part, final)


def load_index(ctx: Context) -> Index:
    """Every study being moved now, with its expected SOP Instance UIDs."""
    index = Index(loaded_at=time.monotonic())
    moving = select(CachedStudy).where(
        CachedStudy.state == "moving", CachedStudy.lease_until >= ctx.clock.now()
    )
    with ctx.sessions() as session:
        studies = list(session.scalars(moving))
        for study in studies:
            target = _target_of(ctx, study)
            if not target.by_uid:
                index.by_study.setdefault(target.study_uid, []).append(target)
            query = select(ExpectedInstance.sop_instance_uid).where(
                ExpectedInstance.cached_study_id == study.id
            )
            for sop in session.scalars(query):
                index.by_sop[sop] = target
    return index


def _target_of(ctx: Context, study: CachedStudy) -> Target:
    source = ctx.settings.source(study.source)
    titles = frozenset((source.store_ae_titles or [source.ae_title]) if source else ())
    return Target(
        study_id=study.id,
        study_uid=study.study_instance_uid,
        folder=cache.study_dir(ctx, study.id),
        ae_titles=titles,
        by_uid=study.uid_list_complete,
    )


def start(ctx: Context) -> StorageSCP | None:
    """Start our Storage SCP on ``dicom.host:port`` with the receiver (serve, demo, worker).

    Only one process per host can listen on the port; when another one already does (``serve``
    and a separate ``worker`` on one machine), this one does without: the lists are in the
    database, so that process receives for everyone.
    """
    if ctx.extras.get("storage_scp") is not None:
        return ctx.extras["storage_scp"]
    d = ctx.settings.dicom
    scp = StorageSCP(local_ae(ctx.settings), d.host, d.port, on_store=Receiver(ctx))
    try:
        scp.start()
    except OSError as error:
        log.warning("Storage SCP not started on %s:%s: %s", d.host, d.port, error)
        return None
    ctx.extras["storage_scp"] = scp
    return scp


def stop(ctx: Context) -> None:
    scp: Any = ctx.extras.pop("storage_scp", None)
    if scp is not None:
        scp.stop()
