"""One study under its lease: describe it (SERIES, IMAGE), move it, record what arrived.

Only the holder of the study's lease runs this, so of two retrievals that want the same study
(in any process) exactly one issues the C-MOVE; the other is linked to the same cache entry
and is finished by ``settle.study_settled`` when the move is over (issue 5: "simultaneous
requests for the same study share one C-MOVE").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset, dcmread
from sqlalchemy import select, update

from pacsbridge.context import Context, local_ae
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import PacsbridgeError, PeerUnavailable
from pacsbridge.messages import text
from pacsbridge.retrievals import cache, leases, query, retrieve, settle, statuses
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, SourceSlot
from pacsbridge.settings import SourceSettings

log = logging.getLogger(__name__)


@dataclass
class Source:
    settings: SourceSettings

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def peer(self) -> Peer:
        s = self.settings
        return Peer(ae_title=s.ae_title, host=s.host, port=s.port, name=s.name)


def bring_in(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    """Move the study unless it is cached or another mover holds it (then we are linked)."""
    if not leases.take_study(ctx, study_id):
        return  # another C-MOVE of this study is in flight: settle() will finish us
    try:
        if _state(ctx, study_id) != "complete":
            _bring_in_held(ctx, retrieval_id, study_id, source)
    finally:
        leases.release(ctx, CachedStudy, study_id)
    settle.study_settled(ctx, study_id)


def _bring_in_held(ctx: Context, retrieval_id: int, study_id: int, source: Source) -> None:
    wait = ctx.settings.fse.move_timeout_seconds
    with leases.source_slot(ctx, source.name, wait) as slot:
        if slot is None:
            raise PeerUnavailable(
                "every slot busy", peer=source.name, explanation="retrieval.source_busy"
            )
        held = leases.Held([(Retrieval, retrieval_id), (CachedStudy, study_id), (SourceSlot, slot)])
        with leases.heartbeat(ctx, held):
            try:
                cache.check_disk(ctx)
                _describe_if_needed(ctx, study_id, source)
                _move(ctx, study_id, source)
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
    found = query.describe_study(local_ae(ctx.settings), source.peer, dataset, image_level)
    _store_description(ctx, study_id, found)


def _store_description(ctx: Context, study_id: int, found: query.FoundStudy) -> None:
    with ctx.sessions.begin() as session:
        study = session.get_one(CachedStudy, study_id)
        study.study_metadata = {
            "study": study.study_metadata["study"],
            "series": [dataset_json(s.dataset) for s in found.series],
        }
        study.uid_list_complete = found.uid_list_complete
        study.expected_count = found.expected_count
        study.notes = [*study.notes, *found.notes]
        session.add_all(
            ExpectedInstance(
                cached_study_id=study_id,
                series_instance_uid=series.uid,
                sop_instance_uid=str(row.SOPInstanceUID),
                sop_class_uid=str(row.get("SOPClassUID", "") or ""),
                instance_number=_int(row.get("InstanceNumber")),
            )
            for series in found.series
            for row in _unique(series.instances or [])
        )


def _unique(rows: list[Dataset]) -> list[Dataset]:
    seen: dict[str, Dataset] = {}
    for row in rows:
        seen.setdefault(str(row.SOPInstanceUID), row)
    return list(seen.values())


def _move(ctx: Context, study_id: int, source: Source) -> None:
    plan = _plan(ctx, study_id)
    _set(ctx, study_id, state="moving")
    report = retrieve.move_study(ctx, source.peer, source.name, plan)
    _record(ctx, plan, report)


def _plan(ctx: Context, study_id: int) -> retrieve.Plan:
    with ctx.sessions() as session:
        study = session.get_one(CachedStudy, study_id)
        rows = session.execute(
            select(ExpectedInstance.sop_instance_uid, ExpectedInstance.series_instance_uid).where(
                ExpectedInstance.cached_study_id == study_id
            )
        )
        return retrieve.Plan(
            study_id=study_id,
            study_uid=study.study_instance_uid,
            folder=cache.study_dir(ctx, study_id),
            expected={sop: series for sop, series in rows},
            uid_list_complete=study.uid_list_complete,
            expected_count=study.expected_count,
        )


def _record(ctx: Context, plan: retrieve.Plan, report: retrieve.Report) -> None:
    """Arrivals into rows once (the receiver wrote only files); complete or partial."""
    extra = {sop: size for sop, size in report.arrived.items() if sop not in plan.expected}
    described = [_describe_file(plan, sop) for sop in extra]
    with ctx.sessions.begin() as session:
        _mark_received(session, plan, report.arrived)
        session.add_all(ExpectedInstance(**row) for row in described if row)
        study = session.get_one(CachedStudy, plan.study_id)
        study.received_count = len(report.arrived)
        study.size_bytes = sum(report.arrived.values())
        study.expected_count = max(study.expected_count, len(report.arrived) + report.missing_count)
        study.move_count += report.moves
        study.notes = [*study.notes, *report.notes, *_cap_confirmed(plan, extra)]
        study.state = "partial" if report.missing_count else "complete"
        study.errors = _incomplete(report) if report.missing_count else []
        study.updated_at = ctx.clock.now()
        cache.mark_cached(ctx, study)


def _mark_received(session, plan: retrieve.Plan, arrived: dict[str, int]) -> None:  # noqa: ANN001
    rows = session.execute(
        select(ExpectedInstance.id, ExpectedInstance.sop_instance_uid).where(
            ExpectedInstance.cached_study_id == plan.study_id
        )
    )
    values = [
        {"id": row_id, "received": True, "size_bytes": arrived[sop]}
        for row_id, sop in rows
        if sop in arrived
    ]
    if values:
        session.execute(update(ExpectedInstance), values)


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


def dataset_json(ds: Dataset) -> dict[str, Any]:
    return {k: v for k, v in ds.to_json_dict().items() if k != "00080052"}  # QueryRetrieveLevel


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
