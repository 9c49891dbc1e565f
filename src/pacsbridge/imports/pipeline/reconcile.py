"""Riconciliazione: the stored copies carry the RIS identity (IHE Import Reconciliation Workflow).

For each instance a copy is written to ``reconciled/<ImportInstance id>.dcm``: named from our
row id, never from a UID of the medium, and written atomically, so a crash never leaves half a
file and a re-run skips what is done. The copy gets Patient ID and Issuer, Name, Birth Date and
Sex from the RIS; Accession Number from the order (emptied when the order has none, so a foreign
accession never collides with a local one); Request Attributes Sequence with the order's
identifiers; a Contributing Equipment item for the importer (DCM MEDIM "Portable Media Importer
Equipment"); every replaced value kept in one Original Attributes Sequence item (reason COERCE,
PS3.3 C.12.1); old and new Patient IDs in Other Patient IDs Sequence. UIDs never change. The
originals stay untouched in ``files/``.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsbridge import __version__
from pacsbridge.imports.models import Launch
from pacsbridge.imports.pipeline.base import Done, Job

IDENTITY = ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex")


def run(job: Job) -> Done:
    if not job.ctx.settings.imports.reconcile:
        return Done("done.reconcile_off")
    job.reconciled_dir.mkdir(parents=True, exist_ok=True)
    instances = job.instances()
    now = job.ctx.clock.now()
    institution = job.ctx.settings.imports.institution_name
    for index, instance in enumerate(instances):
        target = job.reconciled_path(instance)
        if not target.exists():
            reconcile_file(job.original_path(instance), target, job.launch, now, institution)
        if index % 50 == 0:
            job.beat()
    return Done("done.reconcile", {"count": len(instances)})


def reconcile_file(
    source: Path, target: Path, launch: Launch, now: datetime, institution: str = ""
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(source)
        ds.decode()
    apply_identity(ds, launch, now, institution)
    temporary = target.with_suffix(".part")
    try:
        ds.save_as(temporary, enforce_file_format=True)
    except OSError:
        temporary.unlink(missing_ok=True)  # a half-written copy only takes space (disk full)
        raise
    os.replace(temporary, target)


def apply_identity(ds: Dataset, launch: Launch, now: datetime, institution: str = "") -> None:
    """Replace the identity, keeping what was there in the Original Attributes Sequence."""
    new = _new_values(launch)
    original = Dataset()
    for keyword, value in new.items():
        if keyword in ds and str(ds.data_element(keyword).value) != value:
            setattr(original, keyword, ds.data_element(keyword).value)
    _other_ids(ds, launch)
    for keyword, value in new.items():
        setattr(ds, keyword, value)
    _request_attributes(ds, launch)
    _contributing_equipment(ds, now, institution)
    if len(original):
        _original_attributes(ds, original, now)
    _character_set(ds, new.values())


def _new_values(launch: Launch) -> dict[str, str]:
    name = f"{launch.family_name}^{launch.given_name}".rstrip("^")
    return {
        "PatientID": launch.patient_id,
        "IssuerOfPatientID": launch.issuer,
        "PatientName": name,
        "PatientBirthDate": launch.birth_date.strftime("%Y%m%d"),
        "PatientSex": launch.sex,
        "AccessionNumber": launch.accession_number,
    }


def _other_ids(ds: Dataset, launch: Launch) -> None:
    items = list(ds.get("OtherPatientIDsSequence", []))
    known = {(str(i.get("PatientID", "")), str(i.get("IssuerOfPatientID", ""))) for i in items}
    for pid, issuer in (
        (str(ds.get("PatientID", "")), str(ds.get("IssuerOfPatientID", ""))),
        (launch.patient_id, launch.issuer),
    ):
        if pid and (pid, issuer) not in known:
            items.append(_id_item(pid, issuer))
            known.add((pid, issuer))
    ds.OtherPatientIDsSequence = items


def _id_item(patient_id: str, issuer: str) -> Dataset:
    item = Dataset()
    item.PatientID = patient_id
    item.IssuerOfPatientID = issuer
    item.TypeOfPatientID = "TEXT"
    return item


def _request_attributes(ds: Dataset, launch: Launch) -> None:
    item = Dataset()
    item.RequestedProcedureID = launch.order_number[:16]
    item.PlacerOrderNumberImagingServiceRequest = launch.order_number
    item.AccessionNumber = launch.accession_number
    item.RequestedProcedureDescription = launch.order_description
    ds.RequestAttributesSequence = [item]


def _contributing_equipment(ds: Dataset, now: datetime, institution: str) -> None:
    purpose = Dataset()
    purpose.CodeValue = "MEDIM"
    purpose.CodingSchemeDesignator = "DCM"
    purpose.CodeMeaning = "Portable Media Importer Equipment"
    item = Dataset()
    item.PurposeOfReferenceCodeSequence = [purpose]
    item.Manufacturer = "pacsbridge"
    item.InstitutionName = institution
    item.SoftwareVersions = __version__
    item.ContributionDateTime = now.strftime("%Y%m%d%H%M%S")
    item.ContributionDescription = "Import da supporto esterno"
    ds.ContributingEquipmentSequence = [*ds.get("ContributingEquipmentSequence", []), item]


def _original_attributes(ds: Dataset, original: Dataset, now: datetime) -> None:
    item = Dataset()
    item.ModifiedAttributesSequence = [original]
    item.AttributeModificationDateTime = now.strftime("%Y%m%d%H%M%S")
    item.ModifyingSystem = "pacsbridge"
    item.SourceOfPreviousValues = str(ds.get("InstitutionName", ""))[:64]
    item.ReasonForTheAttributeModification = "COERCE"
    ds.OriginalAttributesSequence = [*ds.get("OriginalAttributesSequence", []), item]


def _character_set(ds: Dataset, values) -> None:  # noqa: ANN001
    """UTF-8 when a new value is not ASCII; every text value was decoded first, so re-encoding
    the whole data set in UTF-8 is lossless."""
    if any(not str(v).isascii() for v in values):
        ds.SpecificCharacterSet = "ISO_IR 192"
