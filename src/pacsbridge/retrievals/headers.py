"""The Find Study Metadata keys of FSE spec §3.1, always present, filled from the files if need be.

A PACS answers a C-FIND with what it indexes, not with what was asked: pynetdicom's Q/R app
returns no PatientSex, PatientBirthDate, StudyDescription or SOPClassUID at all (its index has
no such columns), and DCMTK and Orthanc return some keys empty. The FSE reads the metadata
answer and the package's DICOMDIR needs the SOP Class, so:

* every key of the specification is present in the stored metadata (empty when unknown), so
  an integrator never has to tell "absent" from "empty";
* once the instances have arrived, keys the PACS left empty are filled from the received
  files' headers (one file per series; the files are what the patient gets, so they agree
  with the package). Values the PACS did answer are never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info

#: FSE spec §3.1, "Livello Study" (DateOfBirth = PatientBirthDate, IdIssuer = IssuerOfPatientID)
SPEC_STUDY_KEYS = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "PatientID",
    "IssuerOfPatientID",
    "StudyInstanceUID",
    "StudyID",
    "StudyDate",
    "AccessionNumber",
    "StudyDescription",
)
#: "Livello Series"
SPEC_SERIES_KEYS = ("SeriesInstanceUID", "SeriesNumber", "Modality")
#: "Livello Image"
SPEC_IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber")
UNREADABLE = (OSError, InvalidDicomError, ValueError, EOFError)


def with_keys(ds: Dataset, keywords: Iterable[str]) -> Dataset:
    """``ds`` with every keyword present (empty when the PACS did not answer it)."""
    for keyword in keywords:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def as_json(ds: Dataset) -> dict[str, Any]:
    """DICOM JSON without the query's own bookkeeping (Query/Retrieve Level, Retrieve AE)."""
    skip = {"00080052", "00080054"}
    return {tag: value for tag, value in ds.to_json_dict().items() if tag not in skip}


def completed(metadata: Mapping[str, Any], sample_by_series: Mapping[str, Path]) -> dict[str, Any]:
    """The metadata with empty spec keys filled from one received file per series."""
    study = with_keys(Dataset.from_json(metadata["study"]), SPEC_STUDY_KEYS)
    series_list = []
    first_header: Dataset | None = None
    for raw in metadata.get("series") or []:
        series = with_keys(Dataset.from_json(raw), SPEC_SERIES_KEYS)
        header = _header(sample_by_series.get(str(series.SeriesInstanceUID)))
        if header is not None:
            _fill(series, header, SPEC_SERIES_KEYS)
            first_header = first_header or header
        series_list.append(as_json(series))
    if first_header is not None:
        _fill(study, first_header, SPEC_STUDY_KEYS)
    return {"study": as_json(study), "series": series_list}


def sop_class_of(path: Path) -> str:
    """The SOP Class UID of a received file, from its file meta (cheap: no data set read)."""
    try:
        return str(read_file_meta_info(path).get("MediaStorageSOPClassUID", "") or "")
    except UNREADABLE:
        return ""


def _header(path: Path | None) -> Dataset | None:
    if path is None:
        return None
    try:
        return dcmread(path, stop_before_pixels=True)
    except UNREADABLE:
        return None


def _fill(target: Dataset, source: Dataset, keywords: Iterable[str]) -> None:
    for keyword in keywords:
        if not target.get(keyword) and source.get(keyword):
            target[keyword] = source[keyword]
            if "SpecificCharacterSet" in source and "SpecificCharacterSet" not in target:
                target.SpecificCharacterSet = source.SpecificCharacterSet
