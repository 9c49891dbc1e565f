"""README.TXT of a package: patient, studies, date of the package, and what is missing.

Plain ASCII with CRLF line ends (an ISO 9660 medium may be opened anywhere; names are
transliterated with anyascii). The wording lives in the message catalogue (``package.*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from anyascii import anyascii
from pydicom import Dataset
from sqlalchemy import select

from pacsbridge.context import Context
from pacsbridge.messages import text as message
from pacsbridge.retrievals.lifecycle import StudyState
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance

MAX_MISSING_LISTED = 10_000


def text(
    ctx: Context,
    studies: list[CachedStudy],
    files: int,
    absent: list[CachedStudy],
    not_found: Sequence[str] = (),
) -> str:
    """The README; ``absent`` are the studies of the request of which nothing arrived,
    ``not_found`` the accession numbers of the request that matched no study."""
    lines = [
        message("package.readme_title"),
        "",
        message("package.readme_date", date=_date(ctx.clock.now())),
    ]
    datasets = [Dataset.from_json(s.study_metadata["study"]) for s in studies]
    for patient in _patients(datasets):
        lines.append(message("package.readme_patient", **patient))
    lines += ["", message("package.readme_studies", files=files)]
    for number, (study, ds) in enumerate(zip(studies, datasets, strict=True), start=1):
        lines.append(_study_line(number, study, ds))
    lines += ["", message("package.readme_how_to_open")]
    lines += _missing(ctx, studies)
    lines += _absent(absent)
    lines += _not_found(not_found)
    return "\r\n".join(anyascii(line) for line in lines) + "\r\n"


def _patients(datasets: list[Dataset]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for ds in datasets:
        key = f"{ds.get('PatientID', '')}|{ds.get('IssuerOfPatientID', '')}"
        seen.setdefault(
            key,
            {
                "name": str(ds.get("PatientName", "") or "").replace("^", " ").strip(),
                "patient_id": str(ds.get("PatientID", "") or ""),
                "issuer": str(ds.get("IssuerOfPatientID", "") or "-"),
                "birth_date": _dicom_date(ds.get("PatientBirthDate")),
                "sex": str(ds.get("PatientSex", "") or "-"),
            },
        )
    return list(seen.values())


def _study_line(number: int, study: CachedStudy, ds: Dataset) -> str:
    return message(
        "package.readme_study",
        number=number,
        date=_dicom_date(ds.get("StudyDate")),
        description=str(ds.get("StudyDescription", "") or "-"),
        accession=study.accession_number or "-",
        count=study.received_count,
        uid=study.study_instance_uid,
    )


def _missing(ctx: Context, studies: list[CachedStudy]) -> list[str]:
    incomplete = [s for s in studies if s.state == StudyState.PARTIAL]
    if not incomplete:
        return []
    missing = sum(max(s.expected_count - s.received_count, 0) for s in incomplete)
    lines = ["", message("package.readme_partial", missing=missing)]
    query = select(ExpectedInstance.sop_instance_uid, ExpectedInstance.series_instance_uid).where(
        ExpectedInstance.cached_study_id.in_([s.id for s in incomplete]),
        ExpectedInstance.received.is_(False),
    )
    with ctx.sessions() as session:
        rows = list(session.execute(query.limit(MAX_MISSING_LISTED)))
    lines += [message("package.readme_missing", sop=sop, series=series) for sop, series in rows]
    return lines


def _absent(studies: list[CachedStudy]) -> list[str]:
    """Studies found on the PACS but not retrieved at all (their C-MOVE failed)."""
    if not studies:
        return []
    lines = ["", message("package.readme_absent", count=len(studies))]
    for study in studies:
        ds = Dataset.from_json(study.study_metadata["study"])
        lines.append(
            message(
                "package.readme_absent_study",
                date=_dicom_date(ds.get("StudyDate")),
                accession=study.accession_number or "-",
                uid=study.study_instance_uid,
            )
        )
    return lines


def _not_found(accessions: Sequence[str]) -> list[str]:
    if not accessions:
        return []
    lines = ["", message("package.readme_not_found", count=len(accessions))]
    return lines + [message("package.readme_not_found_accession", accession=a) for a in accessions]


def _date(when: datetime) -> str:
    return when.strftime("%d/%m/%Y")


def _dicom_date(value: object) -> str:
    raw = str(value or "")
    return f"{raw[6:8]}/{raw[4:6]}/{raw[0:4]}" if len(raw) == 8 and raw.isdigit() else "-"
