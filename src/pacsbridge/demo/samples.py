"""Sample media made with pydicom: the demo's CD and USB stick, and the test suite's data.

Why generated rather than committed: pydicom's ``get_testdata_file`` downloads most files at run
time (no network here), and generating lets each test choose patients, character sets, sizes and
defects. The demo and the tests use this one generator, so what the demo shows is what is tested.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

#: Root for UIDs made by the generator (pydicom's own UID root + a fixed suffix).
UID_PREFIX = "1.2.826.0.1.3680043.8.498.77."


@dataclass(frozen=True)
class SamplePatient:
    """A patient as it appears in DICOM files (PN already in DICOM form, e.g. ``ROSSI^MARIO``)."""

    name: str = "TEST^TEST"
    patient_id: str = "97119460"
    birth_date: str = "19740101"
    sex: str = "M"
    issuer: str = ""
    other_ids: tuple[str, ...] = ()
    charset: str = "ISO_IR 100"


@dataclass
class SampleStudy:
    """One study to write: its series layout and the attributes the operator sees."""

    patient: SamplePatient = field(default_factory=SamplePatient)
    description: str = "TC TORACE"
    accession_number: str = "SIF3503219"
    study_date: str = "20240601"
    study_time: str = "091454"
    modality: str = "CT"
    series_count: int = 2
    instances_per_series: int = 3
    rows: int = 32
    columns: int = 32
    study_instance_uid: str = field(default_factory=lambda: generate_uid(UID_PREFIX))
    sop_class_uid: str = CTImageStorage

    def datasets(self) -> Iterator[Dataset]:
        """Every instance of the study, series by series.

        UIDs derive from the study UID, so writing the same study twice (a CD and a copy already
        on the PACS) gives the same instances, as in real life.
        """
        for series_index in range(self.series_count):
            series_uid = generate_uid(UID_PREFIX, [self.study_instance_uid, str(series_index)])
            for number in range(1, self.instances_per_series + 1):
                yield make_instance(self, series_uid, series_index + 1, number)


def make_instance(
    study: SampleStudy, series_uid: str, series_number: int, instance_number: int
) -> Dataset:
    """One image of ``study``: a gradient so thumbnails show something; CT-like attributes."""
    patient = study.patient
    ds = Dataset()
    ds.SpecificCharacterSet = patient.charset
    ds.SOPClassUID = study.sop_class_uid
    ds.SOPInstanceUID = generate_uid(UID_PREFIX, [series_uid, str(instance_number)])
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    if patient.issuer:
        ds.IssuerOfPatientID = patient.issuer
    if patient.other_ids:
        ds.OtherPatientIDsSequence = [_other_id(value) for value in patient.other_ids]
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.StudyDescription = study.description
    ds.AccessionNumber = study.accession_number
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"SERIE {series_number}"
    ds.Modality = study.modality
    ds.InstanceNumber = instance_number
    _add_pixels(ds, study.rows, study.columns, instance_number)
    ds.file_meta = _file_meta(ds)
    return ds


def _other_id(value: str) -> Dataset:
    item = Dataset()
    item.PatientID = value
    item.TypeOfPatientID = "TEXT"
    return item


def _add_pixels(ds: Dataset, rows: int, columns: int, seed: int) -> None:
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = 1024  # the whole 12-bit range: the gradient is visible in thumbnails
    ds.WindowWidth = 4096
    step = max(1, 4095 // max(1, rows + columns - 2))
    gradient = np.add.outer(np.arange(rows), np.arange(columns)) * step + seed
    ds.PixelData = (gradient % 4096).astype("<u2").tobytes()


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def write_loose(folder: Path, studies: Iterable[SampleStudy], junk: bool = True) -> list[Path]:
    """Write instances as loose Part 10 files (``IMG00001.dcm`` ...) plus typical CD junk."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(_all(studies), start=1):
        path = folder / "images" / f"IMG{index:05d}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    if junk:
        write_junk(folder)
    return paths


def write_cd(folder: Path, studies: Iterable[SampleStudy], junk: bool = True) -> Path:
    """Write a CD-like folder: DICOMDIR at the root and files in 8-character names (PS3.10)."""
    folder.mkdir(parents=True, exist_ok=True)
    fileset = FileSet()
    staging = folder / ".staging"
    staging.mkdir(exist_ok=True)
    for index, ds in enumerate(_all(studies)):
        path = staging / f"{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        fileset.add(path)
    fileset.write(folder)
    shutil.rmtree(staging)
    if junk:
        write_junk(folder)
    return folder / "DICOMDIR"


def write_junk(folder: Path) -> None:
    """What real CDs carry besides images: autorun, a viewer, a PDF report, a picture."""
    (folder / "AUTORUN.INF").write_text("[autorun]\nopen=viewer\\viewer.exe\n")
    viewer = folder / "VIEWER"
    viewer.mkdir(exist_ok=True)
    (viewer / "VIEWER.EXE").write_bytes(b"MZ" + bytes(300))
    (folder / "REPORT.PDF").write_bytes(b"%PDF-1.4\n%fake report\n")
    (folder / "LOGO.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))


def _all(studies: Iterable[SampleStudy]) -> Iterator[Dataset]:
    for study in studies:
        yield from study.datasets()


@dataclass(frozen=True)
class DemoMedia:
    """Where ``write_demo_media`` put things."""

    cd: Path
    usb: Path
    patient: SamplePatient
    study_uids: tuple[str, ...]


def write_demo_media(root: Path) -> DemoMedia:
    """The demo's two media: a CD with DICOMDIR and a USB stick with loose files."""
    patient = SamplePatient(name="TEST^TEST", patient_id="97119460", birth_date="19740101")
    ct = SampleStudy(patient=patient, description="TC TORACE", accession_number="EXT001")
    cr = SampleStudy(
        patient=SamplePatient(name="CERRI^SIMONE", patient_id="97119461", birth_date="19720530"),
        description="COLONSCOPIA IN SEDAZIONE COSCIENTE",
        modality="OT",
        accession_number="SIF3503219",
        series_count=1,
    )
    shutil.rmtree(root / "cd", ignore_errors=True)
    shutil.rmtree(root / "usb", ignore_errors=True)
    write_cd(root / "cd", [ct])
    write_loose(root / "usb", [cr])
    return DemoMedia(root / "cd", root / "usb", patient, (ct.study_instance_uid,))


__all__ = [
    "UID",
    "SamplePatient",
    "SampleStudy",
    "make_instance",
    "write_cd",
    "write_loose",
    "write_junk",
    "write_demo_media",
]
