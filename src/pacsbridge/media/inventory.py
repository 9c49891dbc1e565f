"""Grouping instance headers into patients → studies → series, in a stable order.

The order is fixed (patients by name and ID, studies by date, time and UID, series by number
and UID, instances by number and path) so the confirmation screen and the stored analysis look
the same every time the same medium is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pacsbridge.media.model import (
    InstanceHeader,
    Inventory,
    PatientGroup,
    SeriesGroup,
    StudyGroup,
)

PatientKey = tuple[str, str, str, str, str]


def build_inventory(instances: Iterable[InstanceHeader]) -> Inventory:
    by_patient: dict[PatientKey, list[InstanceHeader]] = defaultdict(list)
    for header in instances:
        by_patient[_patient_key(header)].append(header)
    patients = [_patient(key, headers) for key, headers in by_patient.items()]
    patients.sort(key=lambda p: (p.name, p.patient_id, p.issuer, p.birth_date, p.sex))
    return Inventory(patients=patients, conflicts=_conflicts(by_patient))


def _patient_key(header: InstanceHeader) -> PatientKey:
    return (
        header.patient_id,
        header.issuer_of_patient_id,
        header.patient_name,
        header.patient_birth_date,
        header.patient_sex,
    )


def _conflicts(by_patient: dict[PatientKey, list[InstanceHeader]]) -> list[str]:
    """Patient IDs written with more than one name.

    Trailing empty name components ("ROSSI^MARIO^^") and case are padding, not another person,
    so they do not count. An empty ID identifies nobody and so cannot conflict.
    """
    names: dict[str, set[str]] = defaultdict(set)
    for patient_id, _issuer, name, _birth, _sex in by_patient:
        if patient_id:
            names[patient_id].add(_comparable_name(name))
    return sorted(pid for pid, variants in names.items() if len(variants) > 1)


def _comparable_name(name: str) -> str:
    return name.upper().rstrip("^= ")


def _patient(key: PatientKey, headers: list[InstanceHeader]) -> PatientGroup:
    patient_id, issuer, name, birth_date, sex = key
    other_ids = sorted({value for h in headers for value in h.other_patient_ids})
    return PatientGroup(
        patient_id=patient_id,
        issuer=issuer,
        name=name,
        birth_date=birth_date,
        sex=sex,
        other_patient_ids=tuple(other_ids),
        studies=_studies(headers),
    )


def _studies(headers: list[InstanceHeader]) -> list[StudyGroup]:
    by_study: dict[str, list[InstanceHeader]] = defaultdict(list)
    for header in headers:
        by_study[header.study_instance_uid].append(header)
    studies = [_study(uid, members) for uid, members in by_study.items()]
    studies.sort(key=lambda s: (s.date, s.time, s.study_instance_uid))
    return studies


def _study(uid: str, headers: list[InstanceHeader]) -> StudyGroup:
    series = _series(headers)
    return StudyGroup(
        study_instance_uid=uid,
        description=_first(h.study_description for h in headers),
        date=_first(h.study_date for h in headers),
        time=_first(h.study_time for h in headers),
        accession_number=_first(h.accession_number for h in headers),
        modalities=tuple(sorted({s.modality for s in series if s.modality})),
        series=series,
    )


def _series(headers: list[InstanceHeader]) -> list[SeriesGroup]:
    by_series: dict[str, list[InstanceHeader]] = defaultdict(list)
    for header in headers:
        by_series[header.series_instance_uid].append(header)
    series = [_one_series(uid, members) for uid, members in by_series.items()]
    series.sort(key=lambda s: (_number_key(s.series_number), s.series_instance_uid))
    return series


def _one_series(uid: str, headers: list[InstanceHeader]) -> SeriesGroup:
    ordered = sorted(headers, key=lambda h: (_number_key(h.instance_number), h.path))
    numbers = [h.series_number for h in ordered if h.series_number is not None]
    return SeriesGroup(
        series_instance_uid=uid,
        series_number=numbers[0] if numbers else None,
        modality=_first(h.modality for h in ordered),
        description=_first(h.series_description for h in ordered),
        instances=ordered,
    )


def _number_key(number: int | None) -> tuple[bool, int]:
    """Numbered items first, in numeric order; unnumbered ones after them."""
    return (number is None, number or 0)


def _first(values: Iterable[str]) -> str:
    """The first non-empty value: one instance missing a description must not blank it."""
    return next((value for value in values if value), "")
