"""What :func:`pacsbridge.media.inspect` tells the rest of pacsbridge about one medium.

Plain frozen dataclasses and no pydicom types: the analysis step stores these values, the
confirmation screen shows them, and neither should depend on how the headers were parsed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceHeader:
    """The header fields of one DICOM file that importing and identity checks need.

    ``path`` is relative to the media root, in POSIX form, so it stays valid when the extracted
    folder moves and reads the same on every platform.
    """

    path: str
    size_bytes: int
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_name: str
    patient_id: str
    issuer_of_patient_id: str
    patient_birth_date: str
    patient_sex: str
    other_patient_ids: tuple[str, ...]
    study_description: str
    study_date: str
    study_time: str
    accession_number: str
    modality: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    specific_character_set: str


@dataclass(frozen=True)
class Problem:
    """Something about the medium the operator should know; ``code`` is a message key."""

    code: str
    file: str
    detail: str


@dataclass(frozen=True)
class SeriesGroup:
    series_instance_uid: str
    series_number: int | None
    modality: str
    description: str
    instances: list[InstanceHeader]


@dataclass(frozen=True)
class StudyGroup:
    study_instance_uid: str
    description: str
    date: str
    time: str
    accession_number: str
    modalities: tuple[str, ...]
    series: list[SeriesGroup]

    @property
    def instance_count(self) -> int:
        return sum(len(series.instances) for series in self.series)

    @property
    def series_count(self) -> int:
        return len(self.series)


@dataclass(frozen=True)
class PatientGroup:
    """One set of patient demographics as written on the medium.

    Instances whose demographics differ even slightly land in different groups, because the
    identity check must judge every variant the medium carries, not a merged guess.
    """

    patient_id: str
    issuer: str
    name: str
    birth_date: str
    sex: str
    other_patient_ids: tuple[str, ...]
    studies: list[StudyGroup]


@dataclass(frozen=True)
class Inventory:
    """Patients → studies → series → instances, plus the Patient IDs used with several names."""

    patients: list[PatientGroup]
    conflicts: list[str]


@dataclass(frozen=True)
class MediaReport:
    """Everything importable on a medium and everything that was left out, with the reason."""

    instances: list[InstanceHeader]
    inventory: Inventory
    problems: list[Problem]
    notes: list[Problem]
    used_dicomdir: bool


# Problem codes: each is a key of pacsbridge.messages, shown to the operator as is.
DICOMDIR_MISSING_FILE = "media.dicomdir_missing_file"
UNREFERENCED_FILE = "media.unreferenced_file"
DICOMDIR_UNREADABLE = "media.dicomdir_unreadable"
DUPLICATE_INSTANCE = "media.duplicate_instance"
MISSING_UID = "media.missing_uid"
INVALID_UID = "media.invalid_uid"
UNREADABLE_FILE = "media.unreadable_file"
NOT_DICOM = "media.not_dicom"
