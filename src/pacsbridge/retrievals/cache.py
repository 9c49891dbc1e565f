"""The cache on disk and its rows: layout, one entry per study, disk budget, expiry.

Layout under ``<data_dir>/retrievals``::

    studies/<entry id>/<instance key>.dcm   what our SCP received, byte for byte
    studies/<entry id>/*.part               a C-STORE being written (renamed when whole)
    packages/<retrieval id>.zip             a package, written once and served with Range

Every name is ours: entry and retrieval row ids, and the instance key, a SHA-256 of the SOP
Instance UID (docs/architecture.md: no file name comes from outside data). A received UID
is only ever hashed, so ``../`` in one cannot reach the file system, and the same instance
received twice lands on the same file.

The key of an entry hashes source, issuer, patient id and Study Instance UID: two hospitals
may reuse identifiers. Folders are named by entry row, not by key, so an expired
entry's deletion never races with the new entry of the same study. A file's presence is the
proof of arrival, so the receiver writes no row per instance in the hot path; ``settle``
records the arrivals once the C-MOVE is over (:func:`present` maps the files back to their
SOP Instance UIDs, reading each header once per process).
Expiry (FSE spec §2: "cancellate dopo un tempo definito (normalmente 45 giorni)") deletes the
files, frees the key and marks the retrievals that used the entry ``expired``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
from datetime import timedelta
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import StorageFull
from pacsbridge.jobs import ledger
from pacsbridge.retrievals import lifecycle
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState
from pacsbridge.retrievals.models import CachedStudy, Retrieval, RetrievalStudy

log = logging.getLogger(__name__)
SUFFIX = ".dcm"
PART = ".part"
KEY_LENGTH = 40  # hex digits of SHA-256 kept: 160 bits, no collision among a study's files
MiB = 1024**2
#: instance key → SOP Instance UID of files already read (a key names one UID for ever)
_KNOWN: dict[str, str] = {}
_KNOWN_LOCK = threading.Lock()
MAX_KNOWN = 200_000
#: this process's part of temporary file names (unique among the nodes sharing the folder)
_PROCESS = secrets.token_hex(4)


def root(ctx: Context) -> Path:
    return ctx.data_dir / "retrievals"


def study_key(source: str, issuer: str, patient_id: str, study_uid: str) -> str:
    """The cache key: the same study UID from two sources or patients never collides."""
    raw = "\x1f".join((source, issuer, patient_id, study_uid)).encode()
    return hashlib.sha256(raw).hexdigest()


def study_dir(ctx: Context, study_id: int) -> Path:
    return root(ctx) / "studies" / str(study_id)


def open_study_folder(ctx: Context, study_id: int) -> Path:
    """Create the folder the receiver writes a study into, just before its C-MOVE.

    Only this module creates and deletes study folders: the receiver writes only into a
    folder that exists, so a folder deleted by expiry or failure is never brought back by a
    late C-STORE addressed to the old entry.
    """
    folder = study_dir(ctx, study_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def delete_study_folder(ctx: Context, study_id: int) -> None:
    """Remove a study's files: it expired, or failed for good and is never served."""
    shutil.rmtree(study_dir(ctx, study_id), ignore_errors=True)


def instance_key(sop_instance_uid: str) -> str:
    """Our name for an instance's file: a hash of its (validated) SOP Instance UID."""
    return hashlib.sha256(sop_instance_uid.encode()).hexdigest()[:KEY_LENGTH]


def instance_path(folder: Path, sop_instance_uid: str) -> Path:
    return folder / f"{instance_key(sop_instance_uid)}{SUFFIX}"


def part_path(folder: Path, sop_instance_uid: str) -> Path:
    """Where one thread writes an instance before the rename (two copies may arrive at once).

    The name carries this process's random token as well as the thread's id: several nodes
    share the cache folder (docs/deployment.md), and thread ids repeat across processes.
    """
    return folder / f"{instance_key(sop_instance_uid)}.{_PROCESS}{threading.get_ident()}{PART}"


def package_path(ctx: Context, retrieval_id: int) -> Path:
    return root(ctx) / "packages" / f"{retrieval_id}.zip"


def present(folder: Path) -> dict[str, int]:
    """SOP Instance UID → size of every completely written file in a study folder.

    A file whose header does not name the UID its key is the hash of (not written by our
    receiver) is not a receipt and is left out.
    """
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(SUFFIX)]
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        sop = _sop_of(entry.name[: -len(SUFFIX)], Path(entry.path))
        if sop is not None:
            found[sop] = entry.stat().st_size
    return found


def remember(sop_instance_uid: str) -> None:
    """The receiver wrote this instance: :func:`present` need not read its header."""
    with _KNOWN_LOCK:
        if len(_KNOWN) >= MAX_KNOWN:
            _KNOWN.clear()
        _KNOWN[instance_key(sop_instance_uid)] = sop_instance_uid


def _sop_of(key: str, path: Path) -> str | None:
    with _KNOWN_LOCK:
        known = _KNOWN.get(key)
    if known is not None:
        return known
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        sop = str(ds.get("SOPInstanceUID", "") or "").rstrip("\x00 ")
    except Exception:  # noqa: BLE001 - an unreadable file is no receipt
        return None
    if instance_key(sop) != key:
        return None
    remember(sop)
    return sop


def check_disk(ctx: Context) -> None:
    """Refuse new work above the high-water mark rather than filling the disk."""
    folder = root(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(folder)
    percent = 100 * usage.used / usage.total
    limit = ctx.settings.fse.disk_high_water_percent
    if percent >= limit:
        raise StorageFull(f"disk {percent:.1f}% used, high-water mark {limit:g}%")


def check_room(ctx: Context, retrieval_id: int, study_id: int, expected: int) -> None:
    """Before a C-MOVE: free space less ``fse.disk_free_margin_bytes`` must hold the study.

    The study's size is unknown before it arrives (C-FIND gives no sizes), so it is
    estimated at ``fse.estimated_instance_bytes`` per expected instance. When short, the
    move is not issued: StorageFull is retriable, so the runner waits its back-off and tries
    again, and fails with the Italian explanation once the attempts are spent; every short
    check is audited (``cache.disk_short``).
    """
    fse = ctx.settings.fse
    folder = root(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    needed = fse.disk_free_margin_bytes + max(expected, 0) * fse.estimated_instance_bytes
    if free >= needed:
        return
    params = {
        "free_mb": free // MiB,
        "needed_mb": -(-needed // MiB),
        "margin_mb": fse.disk_free_margin_bytes // MiB,
    }
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "cache.disk_short",
            retrieval_id=retrieval_id,
            outcome="refused",
            study_id=study_id,
            expected_instances=expected,
            free_bytes=free,
            needed_bytes=needed,
        )
    raise StorageFull(
        f"{free} bytes free, {needed} needed", explanation="retrieval.disk_short", **params
    )


def entry_for(ctx: Context, session: Session, found: dict[str, str]) -> CachedStudy:
    """The live entry for a study (source, issuer, patient_id, study_instance_uid), or a new one.

    The unique ``live_key`` makes this safe across processes: of two concurrent inserts one
    fails, rolls back its savepoint and reads the other's row.
    """
    key = study_key(found["source"], found["issuer"], found["patient_id"], found["study_uid"])
    row = session.scalars(select(CachedStudy).where(CachedStudy.live_key == key)).first()
    if row is not None:
        return row
    now = ctx.clock.now()
    row = CachedStudy(
        key=key,
        live_key=key,
        source=found["source"],
        issuer=found["issuer"],
        patient_id=found["patient_id"],
        study_instance_uid=found["study_uid"],
        accession_number=found.get("accession_number", ""),
        state=StudyState.PENDING,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return session.scalars(select(CachedStudy).where(CachedStudy.live_key == key)).one()
    return row


def live_by_accession(
    session: Session, source: str, accession_number: str, patient_id: str, issuer: str
) -> list[CachedStudy]:
    """Live entries found under an accession number (the fast path of a request)."""
    query = select(CachedStudy).where(
        CachedStudy.live_key.is_not(None),
        CachedStudy.source == source,
        CachedStudy.accession_number == accession_number,
    )
    if patient_id:
        query = query.where(CachedStudy.patient_id == patient_id)
    if issuer:
        query = query.where(CachedStudy.issuer == issuer)
    return list(session.scalars(query))


def mark_cached(ctx: Context, study: CachedStudy) -> None:
    """Start the retention clock of an entry that just became complete or partial."""
    now = ctx.clock.now()
    study.cached_at = now
    study.expires_at = now + timedelta(days=ctx.settings.fse.retention_days)


def expire(ctx: Context) -> list[int]:
    """The periodic job: delete entries older than the retention; returns their ids."""
    now = ctx.clock.now()
    query = (
        select(CachedStudy.id)
        .where(CachedStudy.state.in_(lifecycle.CACHED), CachedStudy.expires_at <= now)
        .where(ledger.free(CachedStudy, now))
    )
    with ctx.sessions() as session:
        ids = list(session.scalars(query))
    for study_id in ids:
        _expire_one(ctx, study_id)
    return ids


def purge(ctx: Context, study_id: int, actor: str) -> bool:
    """Remove one cached entry before its expiry (support console): as expiry does, audited
    ``cache.expired`` with the staff member as actor; False when it is not cached or moving."""
    return _expire_one(ctx, study_id, actor=actor, reason="purged")


def _expire_one(ctx: Context, study_id: int, actor: str = "", reason: str = "retention") -> bool:
    """Expire one entry unless a new request or a mover changed it since it was listed."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        study = session.get(CachedStudy, study_id)
        if study is None or not lifecycle.cached(study.state):
            return False
        if not lifecycle.move_study(
            session,
            study_id,
            study.state,
            StudyState.EXPIRED,
            ledger.free(CachedStudy, now),
            live_key=None,
            updated_at=now,
        ):
            return False
        users = _expire_retrievals(session, study_id, now)
        audit.record(
            session,
            now,
            "cache.expired",
            actor=actor,
            reason=reason,
            study_instance_uid=study.study_instance_uid,
            source=study.source,
            cached_at=study.cached_at.isoformat() if study.cached_at else "",
            size_bytes=study.size_bytes,
            retrievals=users,
        )
    delete_study_folder(ctx, study_id)
    for retrieval_id in users:
        package_path(ctx, retrieval_id).unlink(missing_ok=True)
    return True


def _expire_retrievals(session: Session, study_id: int, now) -> list[int]:  # noqa: ANN001
    """Every retrieval that used the entry shows ``expired`` (its package goes too)."""
    query = (
        select(Retrieval.id, Retrieval.state)
        .join(RetrievalStudy)
        .where(RetrievalStudy.cached_study_id == study_id)
    )
    users = []
    for retrieval_id, state in session.execute(query):
        if lifecycle.servable(state):
            lifecycle.move(session, retrieval_id, state, RetrievalState.EXPIRED, updated_at=now)
        users.append(retrieval_id)
    return users
