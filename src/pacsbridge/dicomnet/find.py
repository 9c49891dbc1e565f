"""C-FIND, Study Root by default, and the two questions the import asks the PACS.

PACS answer C-FIND loosely: pynetdicom's Q/R app returns one STUDY-level row per instance and no
Number of Study Related Instances; some PACS refuse IMAGE level without a Series UID. So study
rows are de-duplicated by their unique key, and instance lists are built SERIES by SERIES with
the full hierarchy of unique keys, which every PACS we test (DCMTK, Orthanc, pynetdicom) answers.

Every answer's UIDs are checked where they enter (PS3.5 §9.1, ``pacsbridge.uids``): an
identifier holding a UID that breaks the grammar is dropped, so it can never be compared,
stored, asked for again or used in a name; the caller may ask to be told (``dropped``).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom.association import Association
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from pacsbridge.dicomnet.association import associate, raise_no_response, status_of
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.errors import PeerRefused
from pacsbridge.uids import clean, is_valid

MODELS = {
    "study": StudyRootQueryRetrieveInformationModelFind,
    "patient": PatientRootQueryRetrieveInformationModelFind,
}
PENDING = (0xFF00, 0xFF01)
#: the UIDs an answer may carry; each, when present and not empty, must be a valid UID
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
MAX_SHOWN = 80


@dataclass(frozen=True)
class DroppedAnswer:
    """A C-FIND answer left out because one of its UIDs is not a UID."""

    level: str
    keyword: str
    #: the offending value, shortened (it is outside data: shown, never used)
    value: str


@dataclass
class SentQuery:
    """One C-FIND as sent, for its audit event (an ATNA Query per request, never per answer:
    PS3.15 A.5.3.10 carries one query); ``ok`` once the peer answered it to the end."""

    level: str
    #: the identifier, base64 in Explicit VR Little Endian (:func:`encoded_identifier`)
    identifier: str
    ok: bool = False


@dataclass(frozen=True)
class StudyOnPacs:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    issuer_of_patient_id: str
    number_of_instances: int | None


def c_find(
    local: LocalAE,
    peer: Peer,
    query: Dataset,
    level: str,
    model: str = "study",
    assoc: Association | None = None,
    dropped: list[DroppedAnswer] | None = None,
    sent: list[SentQuery] | None = None,
) -> list[Dataset]:
    """All identifiers the peer answers with valid UIDs; a failure status raises PeerRefused.

    ``assoc`` reuses an open association (see :func:`find_session`), saving ~15 ms a query.
    Answers with an invalid UID are left out and, when ``dropped`` is given, listed there.
    When ``sent`` is given, the query is appended to it before it leaves (for its audit).
    """
    query.QueryRetrieveLevel = level
    entry = None
    if sent is not None:
        entry = SentQuery(level, encoded_identifier(query, level))
        sent.append(entry)
    rows = _answers(local, peer, query, model, assoc)
    if entry is not None:
        entry.ok = True
    return _valid_only(rows, level, dropped if dropped is not None else [])


def _answers(
    local: LocalAE, peer: Peer, query: Dataset, model: str, assoc: Association | None
) -> list[Dataset]:
    if assoc is not None:
        return _find_on(assoc, peer, query, model)
    with find_session(local, peer, model) as opened:
        return _find_on(opened, peer, query, model)


def _valid_only(rows: list[Dataset], level: str, dropped: list[DroppedAnswer]) -> list[Dataset]:
    kept = []
    for row in rows:
        bad = bad_uid(row)
        if bad is None:
            kept.append(row)
        else:
            dropped.append(DroppedAnswer(level, bad[0], bad[1][:MAX_SHOWN]))
    return kept


def bad_uid(identifier: Dataset) -> tuple[str, str] | None:
    """(keyword, value) of the first UID of an answer that is not a valid UID; None: all are."""
    for keyword in UID_KEYWORDS:
        try:
            value = identifier.get(keyword)
        except Exception:  # noqa: BLE001 - an element pydicom cannot decode is no UID
            return keyword, "?"
        if value is None or value == "":
            continue
        text = clean(value) if isinstance(value, str) else repr(value)
        if not is_valid(text):
            return keyword, text
    return None


def find_session(local: LocalAE, peer: Peer, model: str = "study"):  # noqa: ANN201
    """An association for several C-FINDs in a row (a context manager)."""
    return associate(local, peer, [build_context(MODELS[model])])


def _find_on(assoc: Association, peer: Peer, query: Dataset, model: str) -> list[Dataset]:
    rows: list[Dataset] = []
    for status, identifier in assoc.send_c_find(query, MODELS[model]):
        code = status_of(status)
        if code is None:
            raise_no_response(assoc, peer)
        if code in PENDING:
            if identifier is not None:
                rows.append(identifier)
            continue
        if code == 0x0000:
            return rows
        raise PeerRefused(
            f"C-FIND {query.QueryRetrieveLevel} status 0x{code:04X}",
            peer=peer.label,
            dicom_status=f"0x{code:04X}",
        )
    return rows


def find_study(
    local: LocalAE,
    peer: Peer,
    study_uid: str,
    assoc: Association | None = None,
    sent: list[SentQuery] | None = None,
) -> StudyOnPacs | None:
    """The study with this UID on the PACS, with its patient; None when it is not there."""
    query = study_query(study_uid)
    answers = c_find(local, peer, query, "STUDY", assoc=assoc, sent=sent)
    rows = [r for r in answers if _text(r, "StudyInstanceUID")]
    matching = [r for r in rows if _text(r, "StudyInstanceUID") == study_uid]
    if not matching:
        return None
    row = matching[0]
    count = row.get("NumberOfStudyRelatedInstances")
    return StudyOnPacs(
        study_instance_uid=study_uid,
        patient_id=_text(row, "PatientID"),
        patient_name=_text(row, "PatientName"),
        issuer_of_patient_id=_text(row, "IssuerOfPatientID"),
        number_of_instances=int(count) if count not in (None, "") else None,
    )


def study_query(study_uid: str) -> Dataset:
    """The STUDY-level identifier of :func:`find_study` (audited as it is sent, docs/atna.md)."""
    query = Dataset()
    query.StudyInstanceUID = study_uid
    query.PatientID = ""
    query.PatientName = ""
    query.IssuerOfPatientID = ""
    query.NumberOfStudyRelatedInstances = ""
    return query


def encoded_identifier(identifier: Dataset, level: str) -> str:
    """base64 of a C-FIND identifier in Explicit VR Little Endian (PS3.15 A.5.3.10)."""
    sent = copy.deepcopy(identifier)
    sent.QueryRetrieveLevel = level
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, sent)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def find_instance_uids(
    local: LocalAE,
    peer: Peer,
    study_uid: str,
    assoc: Association | None = None,
    sent: list[SentQuery] | None = None,
) -> set[str]:
    """Every SOP Instance UID the PACS lists for the study (SERIES then IMAGE level).

    ``sent`` collects each C-FIND as it leaves (see :func:`c_find`).
    """
    if assoc is None:
        with find_session(local, peer) as opened:
            return find_instance_uids(local, peer, study_uid, opened, sent)
    series = Dataset()
    series.StudyInstanceUID = study_uid
    series.SeriesInstanceUID = ""
    series_uids = {
        _text(r, "SeriesInstanceUID")
        for r in c_find(local, peer, series, "SERIES", assoc=assoc, sent=sent)
        if _text(r, "SeriesInstanceUID")
    }
    found: set[str] = set()
    for series_uid in sorted(series_uids):
        image = Dataset()
        image.StudyInstanceUID = study_uid
        image.SeriesInstanceUID = series_uid
        image.SOPInstanceUID = ""
        rows = c_find(local, peer, image, "IMAGE", assoc=assoc, sent=sent)
        found |= {_text(r, "SOPInstanceUID") for r in rows if _text(r, "SOPInstanceUID")}
    return found


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()
