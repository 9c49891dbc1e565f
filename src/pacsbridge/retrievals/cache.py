"""The cache on disk and its rows: layout, one entry per study, disk high-water mark, expiry.

Layout under ``<data_dir>/retrievals``::

    studies/<entry id>/<SOP Instance UID>.dcm   what our SCP received, byte for byte
    studies/<entry id>/*.part                   a C-STORE being written (renamed when whole)
    packages/<retrieval id>.zip                 a package, written once and served with Range

The key of an entry hashes source, issuer, patient id and Study Instance UID: two hospitals
may reuse identifiers (issue 5). Folders are named by entry row, not by key, so an expired
entry's deletion never races with the new entry of the same study. A file's presence is the
proof of arrival, so the receiver writes no row per instance in the hot path; the mover
records the arrivals once the C-MOVE is over.
Expiry (seed 002 §2: "cancellate dopo un tempo definito (normalmente 45 giorni)") deletes the
files, frees the key and marks the retrievals that used the entry ``expired``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import StorageFull
from pacsbridge.retrievals.models import CachedStudy, Retrieval, RetrievalStudy

log = logging.getLogger(__name__)
SUFFIX = ".dcm"
PART = ".part"


def root(ctx: Context) -> Path:
    return ctx.data_dir / "retrievals"


def study_key(source: str, issuer: str, patient_id: str, study_uid: str) -> str:
    """The cache key: the same study UID from two sources or patients never collides."""
    raw = "\x1f".join((source, issuer, patient_id, study_uid)).encode()
    return hashlib.sha256(raw).hexdigest()


def study_dir(ctx: Context, study_id: int) -> Path:
    return root(ctx) / "studies" / str(study_id)


def instance_path(folder: Path, sop_instance_uid: str) -> Path:
    return folder / f"{sop_instance_uid}{SUFFIX}"


def package_path(ctx: Context, retrieval_id: int) -> Path:
    return root(ctx) / "packages" / f"{retrieval_id}.zip"


def present(folder: Path) -> dict[str, int]:
    """SOP Instance UID → size of every completely written file in a study folder."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return {}
    return {e.name[: -len(SUFFIX)]: e.stat().st_size for e in entries if e.name.endswith(SUFFIX)}


def check_disk(ctx: Context) -> None:
    """Refuse new work above the high-water mark rather than filling the disk."""
    folder = root(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(folder)
    percent = 100 * usage.used / usage.total
    limit = ctx.settings.fse.disk_high_water_percent
    if percent >= limit:
        raise StorageFull(f"disk {percent:.1f}% used, high-water mark {limit:g}%")


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
        .where(CachedStudy.state.in_(("complete", "partial")), CachedStudy.expires_at <= now)
        .where(or_(CachedStudy.lease_until.is_(None), CachedStudy.lease_until < now))
    )
    with ctx.sessions() as session:
        ids = list(session.scalars(query))
    for study_id in ids:
        _expire_one(ctx, study_id)
    return ids


def _expire_one(ctx: Context, study_id: int) -> None:
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        study = session.get(CachedStudy, study_id)
        if study is None or study.state not in ("complete", "partial"):
            return
        folder = study_dir(ctx, study.id)
        study.state, study.live_key, study.updated_at = "expired", None, now
        users = _expire_retrievals(session, study_id, now)
        audit.record(
            session,
            now,
            "cache.expired",
            study_instance_uid=study.study_instance_uid,
            source=study.source,
            cached_at=study.cached_at.isoformat() if study.cached_at else "",
            size_bytes=study.size_bytes,
            retrievals=users,
        )
    shutil.rmtree(folder, ignore_errors=True)
    for retrieval_id in users:
        package_path(ctx, retrieval_id).unlink(missing_ok=True)


def _expire_retrievals(session: Session, study_id: int, now) -> list[int]:  # noqa: ANN001
    """Every retrieval that used the entry shows ``expired`` (its package goes too)."""
    query = select(Retrieval).join(RetrievalStudy).where(RetrievalStudy.cached_study_id == study_id)
    users = []
    for retrieval in session.scalars(query):
        if retrieval.state in ("available", "partial"):
            retrieval.state, retrieval.updated_at = "expired", now
        users.append(retrieval.id)
    return users


def forget(session: Session, study: CachedStudy, now) -> None:  # noqa: ANN001
    """A failed entry frees its key: the next request starts again from the PACS."""
    study.live_key, study.updated_at = None, now
