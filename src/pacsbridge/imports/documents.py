"""Documents on the media (outside reports, referral letters): found, offered, wrapped into DICOM.

CDs carry the outside report as a PDF and sometimes scanned pages as JPEG or PNG; the
radiologist needs them beside the images. Flow:

1. :func:`find` (analysis): the PDF, JPEG and PNG files of the medium, outside the folder of a
   viewer application (a folder below the root that holds programs or libraries, and its
   subfolders), each with a key of ours (16 hex digits of a hash of its path: pages address a
   document by the import id and this key, never by its name) and, when it cannot be imported,
   the named problem: a PDF above ``imports.document_max_bytes`` or without the ``%PDF``
   header, an image Pillow cannot read or larger than ``imports.thumbnail_max_pixels``.
2. The confirmation screen lists them; the operator ticks which ones to import (none by default).
3. :func:`wrap` (confirmation): each ticked file becomes one DICOM object in the first chosen
   study, in a new series per kind with a clear description: Encapsulated PDF (PS3.3 A.45.1)
   or Secondary Capture (PS3.3 A.8), built with highdicom. It carries the medium's patient as
   the images do, is written as ``documents/<number>.dcm`` (named from our numbering) and gets
   an ``ImportInstance`` whose path starts with :data:`MARKER`: from there it passes through
   verify, reconcile (the RIS identity and order, exactly as the images), send and the PACS
   confirmation like any instance.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import highdicom
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, generate_uid

from pacsbridge import __version__

#: Paths of media instances are relative (the archive refuses absolute names), so a path that
#: starts with this marker can only be a wrapped document of ours.
MARKER = "/documents/"
PDF_EXTENSIONS = {"pdf"}
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png"}
#: A folder below the root holding one of these is a viewer application's: its PDFs and
#: pictures are the viewer's help and icons, not the patient's documents.
APPLICATION_EXTENSIONS = {"exe", "dll", "so", "dylib", "jar", "ocx", "msi", "class"}
MAGIC = {"pdf": (b"%PDF",), "image": (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")}
SERIES = {
    "pdf": (9901, "Documenti PDF dal supporto esterno"),
    "image": (9902, "Documenti scansionati dal supporto esterno"),
}
KEY_PATTERN = r"^[0-9a-f]{16}$"


def key_of(relative: str) -> str:
    return hashlib.sha256(relative.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def find(root: Path, max_bytes: int, max_pixels: int) -> list[dict[str, Any]]:
    """The documents of the medium under ``root``, in path order, each with its problem."""
    found = []
    for path in sorted(_candidates(root)):
        relative = path.relative_to(root).as_posix()
        kind = "pdf" if _extension(path) in PDF_EXTENSIONS else "image"
        found.append(
            {
                "key": key_of(relative),
                "path": relative,
                "name": path.name,
                "kind": kind,
                "size": path.stat().st_size,
                "problem": problem_of(path, kind, max_bytes, max_pixels),
            }
        )
    return found


def _candidates(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here != root and any(_extension(Path(f)) in APPLICATION_EXTENSIONS for f in files):
            dirs.clear()  # a viewer application: neither this folder nor those below it
            continue
        for name in files:
            path = here / name
            if _extension(path) in PDF_EXTENSIONS | IMAGE_EXTENSIONS and path.is_file():
                yield path


def _extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".").split(";")[0]


def problem_of(path: Path, kind: str, max_bytes: int, max_pixels: int) -> str:
    """The message key of why the file cannot be imported; empty when it can."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(MAGIC[kind]):
        return "document.unreadable"
    if kind == "pdf":
        return "document.too_large" if path.stat().st_size > max_bytes else ""
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                return "document.too_large"
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return "document.unreadable"
    return ""


def wrap(
    source: Path,
    document: dict[str, Any],
    study: dict[str, Any],
    patient: dict[str, Any],
    series_uid: str,
    number: int,
    now: datetime,
) -> Dataset:
    """The DICOM object for one document, in ``study`` under the medium's ``patient``."""
    series_number, description = SERIES[document["kind"]]
    common: dict[str, Any] = {
        "study_instance_uid": study["study_instance_uid"],
        "series_instance_uid": series_uid,
        "series_number": series_number,
        "sop_instance_uid": generate_uid(),
        "instance_number": number,
        "manufacturer": "pacsbridge",
        "patient_id": patient.get("patient_id") or None,
        "patient_name": patient.get("name") or None,
        "patient_birth_date": (patient.get("birth_date") or "").replace("-", "") or None,
        "patient_sex": patient.get("sex") or None,
        "accession_number": study.get("accession_number") or None,
        "study_date": (study.get("date") or "").replace("-", "") or None,
        "study_time": _dicom_time(study.get("time")),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom warns about optional attributes left out
        if document["kind"] == "pdf":
            ds = _pdf(source, common, description, now)
        else:
            ds = _image(source, common)
    ds.SeriesDescription = description
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SoftwareVersions = __version__
    return ds


def _pdf(source: Path, common: dict[str, Any], description: str, now: datetime) -> Dataset:
    ds = highdicom.base.SOPClass(
        sop_class_uid=EncapsulatedPDFStorage,
        modality="DOC",
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=description,
        **common,
    )
    data = source.read_bytes()
    # Encapsulated Document module (PS3.3 C.24.2): the bytes, their length and MIME type.
    ds.EncapsulatedDocument = data
    ds.EncapsulatedDocumentLength = len(data)  # the bytes before the even-length pad
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = description
    ds.BurnedInAnnotation = "YES"  # a report names the patient
    ds.ConceptNameCodeSequence = []
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ConversionType = "WSD"  # workstation: converted from a file, PS3.3 C.8.6.1
    return ds


def _image(source: Path, common: dict[str, Any]) -> Dataset:
    with Image.open(source) as image:
        pixels = np.asarray(image.convert("RGB"))
    ds = highdicom.sc.SCImage(
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=("L", "F"),
        **common,
    )
    # A scanned page has no patient orientation: Patient Orientation is type 2 (PS3.3
    # C.7.6.1), present and empty; highdicom needs a value to build the object.
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "YES"
    return ds


def _dicom_time(value: str | None) -> str | None:
    digits = (value or "").replace(":", "")
    return digits[:6] or None


def new_series_uids() -> dict[str, str]:
    return {kind: generate_uid() for kind in SERIES}


def save(ds: Dataset, target: Path) -> None:
    """Written whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    try:
        ds.save_as(temporary, enforce_file_format=True)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)
