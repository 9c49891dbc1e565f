"""The plan, first stage of a retrieval: every C-FIND level, and the instances a move must bring.

Find Study Metadata (FSE spec §3.1), C-FIND Study Root at STUDY, then SERIES, then IMAGE level
(the dialogue itself, its checks and caps, is ``query.py``). Two owners, two entry points:
:func:`find_and_link` runs the STUDY level for a request (under the retrieval's lease) and
links each study found to its cache entry; :func:`describe` runs SERIES and IMAGE for one
study (under the study's lease, once per entry) and stores the expected instances;
:func:`expected` hands them to ``move``. They are known before the C-MOVE (ADIT) because a
C-MOVE "Success" proves nothing (``move.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.dicomnet.find import SentQuery, encoded_identifier
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import PeerError
from pacsbridge.retrievals import cache, headers, lifecycle, query
from pacsbridge.retrievals.lifecycle import RetrievalState, StudyState
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval, RetrievalStudy
from pacsbridge.settings import SourceSettings


@dataclass(frozen=True)
class Request:
    """What the FSE asked for (a ``Retrieval`` row, read once per attempt)."""

    id: int
    source: str
    accession_numbers: list[str]
    patient_id: str
    issuer: str


@dataclass(frozen=True)
class Source:
    """A configured source: its settings and its peer (built once, by the runtime)."""

    settings: SourceSettings
    peer: Peer

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass
class Expected:
    """What moving one study needs, read from its cache entry: the plan's product."""

    retrieval_id: int
    study_id: int
    study_uid: str
    folder: Path
    #: SOP Instance UID → Series Instance UID of the IMAGE-level list
    instances: dict[str, str]
    #: the IMAGE list is the whole study (else the count below rules)
    uid_list_complete: bool
    count: int


# --------------------------------------------------------------------------------------------
# STUDY level, for a request: which studies, each linked to its cache entry
# --------------------------------------------------------------------------------------------


def find_and_link(ctx: Context, request: Request, source: Source) -> list[int]:
    """Find Study Metadata at STUDY level, then one cache entry per study, in one transaction."""
    _start_querying(ctx, request.id)
    cache.expire(ctx)  # never link an entry past its retention (the periodic job may lag)
    try:
        rows, notes, errors = query.find_studies(
            ctx.local,
            source.peer,
            request.accession_numbers,
            request.patient_id,
            request.issuer,
        )
    except PeerError:  # a failed attempt is audited too (an ATNA Query, serious failure)
        with ctx.sessions.begin() as session:
            _audit_queries(ctx, session, request, source, outcome="error")
        raise
    with ctx.sessions.begin() as session:
        retrieval = session.get_one(Retrieval, request.id)
        retrieval.notes = [*retrieval.notes, *notes]
        retrieval.errors = [*retrieval.errors, *errors]  # answers dropped for a bad UID
        _audit_queries(ctx, session, request, source)
        studies = [_link(ctx, session, retrieval, request, row) for row in rows]
        _audit_hits(ctx, session, retrieval, studies)
        if studies:  # linked: a shared study's mover may now finish us
            lifecycle.move(
                session,
                request.id,
                RetrievalState.QUERYING,
                RetrievalState.RETRIEVING,
                updated_at=ctx.clock.now(),
            )
        return [s.id for s in studies]


def _audit_hits(
    ctx: Context, session: Session, retrieval: Retrieval, studies: list[CachedStudy]
) -> None:
    """Studies already complete in the cache are served from it: ``retrieval.cache_hit``."""
    hits = [s.study_instance_uid for s in studies if s.state == StudyState.COMPLETE]
    if hits:
        retrieval.cache_hit = True
        audit.record(
            session, ctx.clock.now(), "retrieval.cache_hit", retrieval_id=retrieval.id, studies=hits
        )


def _audit_queries(
    ctx: Context, session: Session, request: Request, source: Source, outcome: str = "ok"
) -> None:
    """``retrieval.queried``: each STUDY-level C-FIND as sent (an ATNA Query, docs/atna.md)."""
    for accession in request.accession_numbers:
        identifier = query.study_query(accession, request.patient_id)
        audit.record(
            session,
            ctx.clock.now(),
            "retrieval.queried",
            retrieval_id=request.id,
            outcome=outcome,
            accession_number=accession,
            patient_id=request.patient_id,
            issuer=request.issuer,
            peer_ae_title=source.peer.ae_title,
            peer_host=source.peer.host,
            query=encoded_identifier(identifier, "STUDY"),
        )


def linked(ctx: Context, retrieval_id: int) -> list[int]:
    """The studies of an earlier attempt whose STUDY level completed."""
    linked_ = select(RetrievalStudy.cached_study_id).where(
        RetrievalStudy.retrieval_id == retrieval_id
    )
    with ctx.sessions() as session:
        return list(session.scalars(linked_.order_by(RetrievalStudy.id)))


def _start_querying(ctx: Context, retrieval_id: int) -> None:
    """Queued → querying; a retry of an attempt that failed while querying stays there."""
    with ctx.sessions.begin() as session:
        lifecycle.move(
            session,
            retrieval_id,
            RetrievalState.QUEUED,
            RetrievalState.QUERYING,
            updated_at=ctx.clock.now(),
        )


def _link(
    ctx: Context, session: Session, retrieval: Retrieval, request: Request, row: Dataset
) -> CachedStudy:
    found = {
        "source": request.source,
        "issuer": str(row.get("IssuerOfPatientID", "") or "") or request.issuer,
        "patient_id": str(row.get("PatientID", "") or ""),
        "study_uid": str(row.StudyInstanceUID),
        "accession_number": str(row.get("AccessionNumber", "") or ""),
    }
    study = cache.entry_for(ctx, session, found)
    if not study.study_metadata:
        study.study_metadata = {"study": dataset_json(row)}
    if study.state == StudyState.PARTIAL:  # a new request asks again for what is missing
        lifecycle.move_study(session, study.id, StudyState.PARTIAL, StudyState.PENDING)
    from_cache = study.state == StudyState.COMPLETE
    session.add(RetrievalStudy(retrieval=retrieval, study=study, from_cache=from_cache))
    return study


def dataset_json(ds: Dataset) -> dict[str, Any]:
    """A STUDY-level C-FIND answer as stored: every spec key present, DICOM JSON."""
    return headers.as_json(headers.with_keys(ds, headers.SPEC_STUDY_KEYS))


# --------------------------------------------------------------------------------------------
# SERIES and IMAGE level, for one study under its lease: the expected instances
# --------------------------------------------------------------------------------------------


def describe(ctx: Context, study_id: int, source: Source) -> None:
    """SERIES and IMAGE level once per entry (a partial entry keeps its list)."""
    with ctx.sessions() as session:
        study = session.get_one(CachedStudy, study_id)
        if study.study_metadata.get("series") is not None:
            return
        dataset = Dataset.from_json(study.study_metadata["study"])
    image_level = source.settings.image_level_queries
    sent: list[SentQuery] = []
    try:
        found = query.describe_study(ctx.local, source.peer, dataset, image_level, sent)
    except PeerError:  # the queries that left are audited too, the failed one as an error
        with ctx.sessions.begin() as session:
            _audit_described(ctx, session, session.get_one(CachedStudy, study_id), source, sent)
        raise
    _store_description(ctx, study_id, found, source, sent)


def _audit_described(
    ctx: Context, session: Session, study: CachedStudy, source: Source, sent: list[SentQuery]
) -> None:
    """``retrieval.described``: each SERIES and IMAGE-level C-FIND of a study as sent, one
    event per C-FIND request whatever the number of answers (an ATNA Query, docs/atna.md)."""
    for one in sent:
        audit.record(
            session,
            ctx.clock.now(),
            "retrieval.described",
            outcome="ok" if one.ok else "error",
            level=one.level,
            study_instance_uid=study.study_instance_uid,
            patient_id=study.patient_id,
            issuer=study.issuer,
            peer_ae_title=source.peer.ae_title,
            peer_host=source.peer.host,
            query=one.identifier,
        )


def _store_description(
    ctx: Context, study_id: int, found: query.FoundStudy, source: Source, sent: list[SentQuery]
) -> None:
    with ctx.sessions.begin() as session:
        study = session.get_one(CachedStudy, study_id)
        _audit_described(ctx, session, study, source, sent)
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
    return (_number(series.dataset, "SeriesNumber") or 0, series.uid)


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
                    instance_number=_number(row, "InstanceNumber"),
                ),
            )
    return list(rows.values())


def expected(ctx: Context, retrieval_id: int, study_id: int) -> Expected:
    """The plan's product for one study, as ``move`` and ``settle`` use it."""
    listed = select(ExpectedInstance.sop_instance_uid, ExpectedInstance.series_instance_uid)
    with ctx.sessions() as session:
        study = session.get_one(CachedStudy, study_id)
        rows = session.execute(listed.where(ExpectedInstance.cached_study_id == study_id))
        return Expected(
            retrieval_id=retrieval_id,
            study_id=study_id,
            study_uid=study.study_instance_uid,
            folder=cache.study_dir(ctx, study_id),
            instances={sop: series for sop, series in rows},
            uid_list_complete=study.uid_list_complete,
            count=study.expected_count,
        )


def _number(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
