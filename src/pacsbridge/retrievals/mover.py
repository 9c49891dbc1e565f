"""One study under its lease: describe it (SERIES, IMAGE), move it, record what arrived.

Only the holder of the study's lease (``jobs.ledger``) runs this, so of two retrievals that
want the same study (in any process) exactly one issues the C-MOVE; the other is linked to
the same cache entry and is finished by ``settle.study_settled`` when the move is over
(docs/integration-fse.md: simultaneous requests for the same study share one C-MOVE). The
lease is renewed by its heartbeat for the whole time, the wait for a source slot included.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from sqlalchemy import select, update

from pacsbridge.context import Context
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import PacsbridgeError, PeerUnavailable
from pacsbridge.jobs import ledger
from pacsbridge.messages import text
from pacsbridge.retrievals import (
    cache,
    headers,
    leases,
    query,
    retrieve,
    settle,
    statuses,
)
from pacsbridge.retrievals.models import SETTLED_STUDY_STATES, CachedStudy, ExpectedInstance
from pacsbridge.settings import SourceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A configured source: its settings and its peer (built once, by the runtime)."""

    settings: SourceSettings
    peer: Peer

    @property
    def name(self) -> str:
        return self.settings.name


#: Entry states that still need a C-MOVE: ``moving`` under a free lease is a killed mover's.
TO_MOVE = ("pending", "moving")


def bring_in(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    """Move the study unless it is settled or another mover holds it (then we are linked).

    Whatever the outcome, the retrievals waiting for this study are told once the lease is
    released (``settle.study_settled``): a study that failed for good must fail them too,
    not leave them ``retrieving`` until the reaper notices.
    """
    lease = ledger.take(ctx, CachedStudy, study_id)
    if not lease.acquired:
        return  # another C-MOVE of this study is in flight: settle() will finish us
    try:
        with ledger.kept(ctx, lease):
            if _state(ctx, study_id) in TO_MOVE:
                _bring_in_held(ctx, retrieval_id, study_id, source, lease)
    finally:
        if _state(ctx, study_id) in SETTLED_STUDY_STATES:
            settle.study_settled(ctx, study_id)


def _bring_in_held(
    ctx: Context, retrieval_id: int, study_id: int, source: Source, study: ledger.Lease
) -> None:
    wait = ctx.settings.fse.move_timeout_seconds
    with leases.source_slot(ctx, source.name, wait) as slot:
        if slot is None:
            raise PeerUnavailable(
                "every slot busy", peer=source.name, explanation="retrieval.source_busy"
            )
        if study.lost:  # this process stalled past the lease and another mover took over
            return
        try:
            cache.check_disk(ctx)
            _describe_if_needed(ctx, study_id, source)
            _move(ctx, retrieval_id, study_id, source)
        except PacsbridgeError as error:
            _back_to_pending(ctx, study_id, error)
            raise
        except Exception:
            _back_to_pending(ctx, study_id, PacsbridgeError("unexpected error"))
            raise


def _state(ctx: Context, study_id: int) -> str:
    with ctx.sessions() as session:
        return session.get_one(CachedStudy, study_id).state


def _describe_if_needed(ctx: Context, study_id: int, source: Source) -> None:
    """SERIES and IMAGE level once per entry (a partial entry keeps its list)."""
    with ctx.sessions() as session:
        study = session.get_one(CachedStudy, study_id)
        if study.study_metadata.get("series") is not None:
            return
        dataset = Dataset.from_json(study.study_metadata["study"])
    image_level = source.settings.image_level_queries
    found = query.describe_study(ctx.local, source.peer, dataset, image_level)
    _store_description(ctx, study_id, found)


def _store_description(ctx: Context, study_id: int, found: query.FoundStudy) -> None:
    with ctx.sessions.begin() as session:
        study = session.get_one(CachedStudy, study_id)
        study.study_metadata = {
            "study": study.study_metadata["study"],
            "series": [
                headers.as_json(headers.with_keys(s.dataset, headers.SPEC_SERIES_KEYS))
                for s in sorted(found.series, key=_series_order)
            ],
        }
        study.uid_list_complete = found.uid_list_complete
        study.expected_count = found.expected_count
        study.notes = [*study.notes, *found.notes]
        study.errors = [*study.errors, *found.errors]  # answers dropped for a bad UID
        session.add_all(_expected_rows(study_id, found))


def _series_order(series: query.FoundSeries) -> tuple[int, str]:
    """Series as a viewer lists them (by number), not in the PACS's answer order."""
    return (_int(series.dataset.get("SeriesNumber")) or 0, series.uid)


def _expected_rows(study_id: int, found: query.FoundStudy) -> list[ExpectedInstance]:
    """One row per SOP Instance UID of the study, even if a PACS lists one in two series."""
    rows: dict[str, ExpectedInstance] = {}
    for series in found.series:
        for row in series.instances or []:
            sop = str(row.SOPInstanceUID)
            rows.setdefault(
                sop,
                ExpectedInstance(
                    cached_study_id=study_id,
                    series_instance_uid=series.uid,
                    sop_instance_uid=sop,
                    sop_class_uid=str(row.get("SOPClassUID", "") or ""),
                    instance_number=_int(row.get("InstanceNumber")),
                ),
            )
    return list(rows.values())


def _move(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    plan = _plan(ctx, retrieval_id, study_id)
    cache.check_room(ctx, retrieval_id, study_id, plan.expected_count)  # before any C-MOVE
    plan.folder.mkdir(parents=True, exist_ok=True)  # the receiver writes only into live folders
    ctx.listener.ensure()  # the process that listened on our port may have died: take it over
    _set(ctx, study_id, state="moving")
    report = retrieve.move_study(ctx, source.peer, source.name, plan)
    _record(ctx, plan, report)


def _plan(ctx: Context, retrieval_id: int, study_id: int) -> retrieve.Plan:
    with ctx.sessions() as session:
        study = session.get_one(CachedStudy, study_id)
        rows = session.execute(
            select(ExpectedInstance.sop_instance_uid, ExpectedInstance.series_instance_uid).where(
                ExpectedInstance.cached_study_id == study_id
            )
        )
        return retrieve.Plan(
            retrieval_id=retrieval_id,
            study_id=study_id,
            study_uid=study.study_instance_uid,
            folder=cache.study_dir(ctx, study_id),
            expected={sop: series for sop, series in rows},
            uid_list_complete=study.uid_list_complete,
            expected_count=study.expected_count,
        )


def _record(ctx: Context, plan: retrieve.Plan, report: retrieve.Report) -> None:
    """Arrivals into rows once (the receiver wrote only files); complete or partial.

    Files are read (SOP classes the C-FIND left empty, headers of unlisted arrivals, metadata
    keys to fill) before the write transaction, so the database lock is held briefly.
    """
    listed = _listed(ctx, plan.study_id)
    updates = _received_rows(plan, listed, report.arrived)
    extra = {sop: size for sop, size in report.arrived.items() if sop not in listed}
    described = [row for row in (_describe_file(plan, sop) for sop in extra) if row]
    series_of = {sop: listed[sop][1] for sop in report.arrived if sop in listed}
    series_of.update((row["sop_instance_uid"], row["series_instance_uid"]) for row in described)
    with ctx.sessions() as session:
        metadata = session.get_one(CachedStudy, plan.study_id).study_metadata
    metadata = headers.completed(metadata, _samples(plan, series_of))
    with ctx.sessions.begin() as session:
        if updates:
            session.execute(update(ExpectedInstance), updates)
        session.add_all(ExpectedInstance(**row) for row in described)
        study = session.get_one(CachedStudy, plan.study_id)
        study.study_metadata = metadata
        study.notes = [*study.notes, *report.notes, *_cap_confirmed(plan, extra)]
        _settle_entry(ctx, study, report)


def _settle_entry(ctx: Context, study: CachedStudy, report: retrieve.Report) -> None:
    """Counts, complete or partial, and the start of the retention clock."""
    study.received_count = len(report.arrived)
    study.size_bytes = sum(report.arrived.values())
    study.expected_count = max(study.expected_count, len(report.arrived) + report.missing_count)
    study.move_count += report.moves
    study.state = "partial" if report.missing_count else "complete"
    incomplete = _incomplete(report) if report.missing_count else []
    study.errors = [*query.lasting(study.errors), *incomplete]
    study.updated_at = ctx.clock.now()
    cache.mark_cached(ctx, study)


def _listed(ctx: Context, study_id: int) -> dict[str, tuple[int, str, str]]:
    """SOP Instance UID → (row id, Series Instance UID, SOP Class UID) of the IMAGE list."""
    query_ = select(
        ExpectedInstance.id,
        ExpectedInstance.sop_instance_uid,
        ExpectedInstance.series_instance_uid,
        ExpectedInstance.sop_class_uid,
    ).where(ExpectedInstance.cached_study_id == study_id)
    with ctx.sessions() as session:
        return {sop: (row_id, series, cls) for row_id, sop, series, cls in session.execute(query_)}


def _received_rows(
    plan: retrieve.Plan, listed: dict[str, tuple[int, str, str]], arrived: dict[str, int]
) -> list[dict[str, Any]]:
    """Received flags and sizes; a SOP class the C-FIND did not give is read from the file."""
    rows = []
    for sop, size in arrived.items():
        if sop not in listed:
            continue
        row_id, _series, sop_class = listed[sop]
        if not sop_class:
            sop_class = headers.sop_class_of(cache.instance_path(plan.folder, sop))
        rows.append(
            {"id": row_id, "received": True, "size_bytes": size, "sop_class_uid": sop_class}
        )
    return rows


def _samples(plan: retrieve.Plan, series_of: dict[str, str]) -> dict[str, Path]:
    """One received file per series: where empty metadata keys are read from."""
    samples: dict[str, Path] = {}
    for sop, series in series_of.items():
        samples.setdefault(series, cache.instance_path(plan.folder, sop))
    return samples


def _describe_file(plan: retrieve.Plan, sop: str) -> dict[str, Any] | None:
    """An instance no IMAGE-level list named (no IMAGE level, capped list): read its header."""
    path = cache.instance_path(plan.folder, sop)
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - the receiver wrote it; an unreadable one is just skipped
        log.warning("cannot read the header of a received instance in study %s", plan.study_id)
        return None
    return {
        "cached_study_id": plan.study_id,
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "sop_instance_uid": sop,
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "instance_number": _int(ds.get("InstanceNumber")),
        "received": True,
        "size_bytes": path.stat().st_size,
    }


def _cap_confirmed(plan: retrieve.Plan, extra: dict[str, int]) -> list[dict[str, Any]]:
    if not plan.expected or not extra:
        return []
    return [
        statuses.note("retrieval.cfind_cap_confirmed", listed=len(plan.expected), extra=len(extra))
    ]


def _incomplete(report: retrieve.Report) -> list[dict[str, Any]]:
    missing = sorted(report.missing)
    return [
        {
            "code": "move_incomplete",
            "message": text("error.move_incomplete", missing=report.missing_count),
            "missing_sop_instance_uids": missing,
            "retriable": False,
        }
    ]


def _back_to_pending(ctx: Context, study_id: int, error: PacsbridgeError) -> None:
    """Retriable: pending again (the retrieval's errors show the attempt). Else failed here."""
    if error.retriable:
        _set(ctx, study_id, state="pending")
        return
    entry = statuses.entry(error, ctx.clock.now().isoformat(), ctx.settings)
    _set(ctx, study_id, state="failed", error=entry)


def _set(ctx: Context, study_id: int, state: str, error: dict[str, Any] | None = None) -> None:
    with ctx.sessions.begin() as session:
        study = session.get_one(CachedStudy, study_id)
        study.state, study.updated_at = state, ctx.clock.now()
        if error is not None:
            study.errors = [*study.errors, error]
        if state == "failed":
            cache.forget(session, study, ctx.clock.now())
    if state == "failed":  # a failed entry is never served: what did arrive goes
        shutil.rmtree(cache.study_dir(ctx, study_id), ignore_errors=True)


def dataset_json(ds: Dataset) -> dict[str, Any]:
    """A STUDY-level C-FIND answer as stored: every spec key present, DICOM JSON."""
    return headers.as_json(headers.with_keys(ds, headers.SPEC_STUDY_KEYS))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
