"""Find Study Metadata (FSE spec §3.1): the C-FIND dialogue at STUDY, SERIES and IMAGE level.

Used by the plan (``plan.py``), which owns the stage: when each level runs and what is stored.
This module only asks and judges the answers; it touches no row.

The keys are the specification's lists, plus the counts the PACS may volunteer (Number of
... Related ...), which we use only to cross-check, never to decide alone
(docs/engineering-notes.md: some PACS return no counts, pynetdicom's qrscp returns one STUDY
row per instance).

Answers enter here: ``dicomnet.find`` drops every answer holding a UID that is not one
(PS3.5 §9.1), and each dropped answer is named in the retrieval's errors (``invalid_uid``):
its study, series or instance is then never asked for, stored, or admitted by the receiver.

Two PACS behaviours are handled here and reported to the caller as notes:

- **No IMAGE level.** The source is configured with ``image_level_queries = false``, or its
  IMAGE-level C-FIND fails, or answers nothing for a series that exists. The expected count
  then comes from the series' Number of Series Related Instances and, after the move, from
  the C-MOVE sub-operation counts; the receiver admits by study instead of by SOP UID.
- **Silent caps.** Some PACS stop after N matches without a warning status. Heuristic: a level
  answered with a count that looks like a configured limit (``looks_like_a_limit``: 50 or more
  and a multiple of 50, or a power of two) is *capped* when the parent's reported count says
  there are more, and *suspected* when the parent reports no count. Either way the IMAGE list
  is not trusted to be whole: the receiver admits by study, and when the move delivers more
  instances than the list held, the cap is confirmed (``settle.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset

from pacsbridge.dicomnet.find import DroppedAnswer, SentQuery, c_find, find_session
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.errors import PeerRefused
from pacsbridge.messages import said
from pacsbridge.retrievals import statuses
from pacsbridge.retrievals.headers import SPEC_IMAGE_KEYS, SPEC_SERIES_KEYS, SPEC_STUDY_KEYS

#: the specification's keys (``headers``) plus what we cross-check counts and times with
STUDY_KEYS = (
    *SPEC_STUDY_KEYS,
    "StudyTime",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
UID = "StudyInstanceUID"
INVALID_UID = "invalid_uid"
CANCELLED = "0xFE00"
SERIES_KEYS = (
    "StudyInstanceUID",
    *SPEC_SERIES_KEYS,
    "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)
IMAGE_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", *SPEC_IMAGE_KEYS)


@dataclass
class FoundSeries:
    dataset: Dataset
    #: the IMAGE-level answers; None when the PACS gave no IMAGE level for this series
    instances: list[Dataset] | None = None
    #: the PACS stopped its IMAGE-level answers (status FE00, e.g. Orthanc's LimitFindInstances)
    cancelled: bool = False

    @property
    def uid(self) -> str:
        return str(self.dataset.SeriesInstanceUID)

    @property
    def reported(self) -> int | None:
        return _count(self.dataset, "NumberOfSeriesRelatedInstances")


@dataclass
class FoundStudy:
    dataset: Dataset
    series: list[FoundSeries] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    #: answers dropped for an invalid UID (``invalid_uid`` error entries)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: False: the receiver must admit by study (no IMAGE level, or a capped list)
    uid_list_complete: bool = True

    @property
    def uid(self) -> str:
        return str(self.dataset.StudyInstanceUID)

    @property
    def image_level(self) -> bool:
        return all(s.instances is not None or s.cancelled for s in self.series)

    @property
    def expected_count(self) -> int:
        """The IMAGE list, or the series' reported counts where they are larger or alone."""
        return sum(max(len(s.instances or ()), s.reported or 0) for s in self.series)


def looks_like_a_limit(count: int) -> bool:
    """Counts PACS administrators pick as C-FIND limits (100, 500, 1000, 256, 1024...)."""
    return count >= 50 and (count % 50 == 0 or count & (count - 1) == 0)


def find_studies(
    local: LocalAE, peer: Peer, accession_numbers: Iterable[str], patient_id: str, issuer: str
) -> tuple[list[Dataset], list[dict[str, Any]], list[dict[str, Any]]]:
    """STUDY level, one C-FIND per accession number; studies de-duplicated by UID.

    Returns the studies, the notes, and the errors naming answers dropped for a bad UID.
    """
    found: dict[str, Dataset] = {}
    notes: list[dict[str, Any]] = []
    dropped: list[DroppedAnswer] = []
    for accession in accession_numbers:
        query = study_query(accession, patient_id)
        rows = unique(c_find(local, peer, query, "STUDY", dropped=dropped), UID)
        if looks_like_a_limit(len(rows)):
            notes.append(
                statuses.note("retrieval.cfind_cap_suspected", level="STUDY", returned=len(rows))
            )
        for row in rows:
            if _matches(row, accession, patient_id, issuer):
                found.setdefault(str(row.StudyInstanceUID), row)
    return list(found.values()), notes, invalid_uid_errors(dropped)


def invalid_uid_errors(dropped: Iterable[DroppedAnswer]) -> list[dict[str, Any]]:
    """One error entry per dropped answer, as a retrieval shows it."""
    return [
        {
            "code": INVALID_UID,
            **said("retrieval.invalid_uid", level=d.level, keyword=d.keyword),
            "level": d.level,
            "keyword": d.keyword,
            "value": d.value,
            "retriable": False,
        }
        for d in dropped
    ]


def lasting(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The errors of a study that outlive a new move: the answers its description dropped."""
    return [e for e in errors if e.get("code") == INVALID_UID]


def study_query(accession: str, patient_id: str) -> Dataset:
    query = _blank(STUDY_KEYS)
    query.AccessionNumber = accession
    query.PatientID = patient_id
    return query


def _matches(row: Dataset, accession: str, patient_id: str, issuer: str) -> bool:
    """Filter locally too: a PACS may ignore a matching key it does not index."""
    if not row.get("StudyInstanceUID") or str(row.get("AccessionNumber", "")) != accession:
        return False
    if patient_id and str(row.get("PatientID", "")) != patient_id:
        return False
    found_issuer = str(row.get("IssuerOfPatientID", "") or "")
    return not (issuer and found_issuer and found_issuer != issuer)


def describe_study(
    local: LocalAE,
    peer: Peer,
    study: Dataset,
    image_level: bool,
    sent: list[SentQuery] | None = None,
) -> FoundStudy:
    """SERIES level for the study, then IMAGE level per series (unless the PACS has none).

    One association for all the queries of a study: an association costs ~15 ms more than
    a query on an open one (docs/engineering-notes.md), and a CT study may have dozens of
    series. ``sent`` collects each C-FIND as it leaves, for the caller's audit.
    """
    sent = [] if sent is None else sent
    with find_session(local, peer) as assoc:
        return _describe_on(local, peer, assoc, study, image_level, sent)


def _describe_on(
    local: LocalAE,
    peer: Peer,
    assoc: Any,
    study: Dataset,
    image_level: bool,
    sent: list[SentQuery],
) -> FoundStudy:
    uid = str(study.StudyInstanceUID)
    dropped: list[DroppedAnswer] = []
    series_rows = c_find(
        local, peer, _series_query(uid), "SERIES", assoc=assoc, dropped=dropped, sent=sent
    )
    found = FoundStudy(
        study, [FoundSeries(row) for row in unique(series_rows, "SeriesInstanceUID")]
    )
    _check_cap(found, "SERIES", len(found.series), _count(study, "NumberOfStudyRelatedSeries"))
    for series in found.series:
        if image_level:
            series.instances = _find_instances(local, peer, assoc, uid, series, dropped, sent)
        if series.cancelled:
            found.notes.append(
                statuses.note("retrieval.cfind_cancelled", level="IMAGE", series=series.uid)
            )
        if series.instances is None:
            found.uid_list_complete = False
        else:
            _check_cap(found, "IMAGE", len(series.instances), series.reported, series.uid)
    if not found.image_level:
        found.notes.append(statuses.note("retrieval.no_image_level", study_instance_uid=uid))
    found.errors = invalid_uid_errors(dropped)
    return found


def _series_query(study_uid: str) -> Dataset:
    query = _blank(SERIES_KEYS)
    query.StudyInstanceUID = study_uid
    return query


def _find_instances(
    local: LocalAE,
    peer: Peer,
    assoc: Any,
    study_uid: str,
    series: FoundSeries,
    dropped: list[DroppedAnswer],
    sent: list[SentQuery],
) -> list[Dataset] | None:
    """IMAGE level for one series; None when the PACS refuses it, stops it or answers nothing.

    A PACS that reaches its own result limit may end with Cancel (FE00, Orthanc) instead of
    capping silently; ``dicomnet.find.c_find`` then raises and the answers so far are lost,
    so the series is counted from its Number of Series Related Instances and admitted by
    study, as without IMAGE level.
    """
    query = _blank(IMAGE_KEYS)
    query.StudyInstanceUID, query.SeriesInstanceUID = study_uid, series.uid
    try:
        rows = c_find(local, peer, query, "IMAGE", assoc=assoc, dropped=dropped, sent=sent)
    except PeerRefused as error:  # a PACS without IMAGE level answers a failure status
        series.cancelled = error.params.get("dicom_status") == CANCELLED
        return None
    rows = unique(rows, "SOPInstanceUID")
    # A series the PACS listed has at least one instance: no answer means no IMAGE level.
    return rows or None


def unique(rows: Iterable[Dataset], keyword: str) -> list[Dataset]:
    """One row per unique key, first answer kept.

    pynetdicom's Q/R app answers one row per stored instance at every level
    (docs/engineering-notes.md): 6 SERIES rows for a 2-series study, whose IMAGE queries
    would then list each instance 3 times.
    """
    seen: dict[str, Dataset] = {}
    for row in rows:
        key = str(row.get(keyword, "") or "").strip()
        if key:
            seen.setdefault(key, row)
    return list(seen.values())


def _check_cap(
    found: FoundStudy, level: str, returned: int, reported: int | None, series: str = ""
) -> None:
    if not looks_like_a_limit(returned) or (reported is not None and reported <= returned):
        return
    found.uid_list_complete = False
    if reported is None:
        found.notes.append(
            statuses.note(
                "retrieval.cfind_cap_suspected", level=level, returned=returned, series=series
            )
        )
    else:
        found.notes.append(
            statuses.note(
                "retrieval.cfind_capped", level=level, returned=returned, reported=reported
            )
        )


def _blank(keywords: Iterable[str]) -> Dataset:
    query = Dataset()
    for keyword in keywords:
        setattr(query, keyword, "")
    return query


def _count(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
