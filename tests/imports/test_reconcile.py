"""Riconciliazione (IHE IRWF): RIS identity in, replaced values kept, UIDs untouched."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydicom import dcmread

from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports.models import Launch
from pacsbridge.imports.pipeline.reconcile import reconcile_file

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def _launch(**changes) -> Launch:
    values = dict(
        patient_id="IOTELU1234",
        issuer="AO17",
        family_name="D'ANGELO",
        given_name="NICOLÒ",
        birth_date=date(1974, 1, 1),
        sex="M",
        order_number="ORD-1",
        accession_number="ACC9",
        order_description="ESAME IMPORTATO",
    )
    values.update(changes)
    return Launch(**values)


def _source(tmp_path, **patient):
    person = SamplePatient(
        name="ROSSI^MARIO",
        patient_id="EXT77",
        issuer="OSPX",
        birth_date="19740101",
        sex="M",
        **patient,
    )
    [path] = write_loose(
        tmp_path / "in",
        [SampleStudy(patient=person, series_count=1, instances_per_series=1)],
        junk=False,
    )
    return path


def test_identity_is_replaced_and_the_old_values_kept(tmp_path):
    source = _source(tmp_path)
    before = dcmread(source)
    target = tmp_path / "out.dcm"
    reconcile_file(source, target, _launch(), NOW, "AO TEST")
    after = dcmread(target)
    assert after.PatientID == "IOTELU1234" and after.IssuerOfPatientID == "AO17"
    assert str(after.PatientName) == "D'ANGELO^NICOLÒ"
    assert after.AccessionNumber == "ACC9"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert after[keyword].value == before[keyword].value
    [item] = after.OriginalAttributesSequence
    assert item.ReasonForTheAttributeModification == "COERCE"
    assert item.ModifyingSystem == "pacsbridge"
    old = item.ModifiedAttributesSequence[0]
    assert old.PatientID == "EXT77" and str(old.PatientName) == "ROSSI^MARIO"
    assert old.AccessionNumber == before.AccessionNumber
    assert "PatientBirthDate" not in old  # unchanged values are not "replaced"
    ids = {(i.PatientID, i.IssuerOfPatientID) for i in after.OtherPatientIDsSequence}
    assert {("EXT77", "OSPX"), ("IOTELU1234", "AO17")} <= ids
    purpose = after.ContributingEquipmentSequence[-1].PurposeOfReferenceCodeSequence[0]
    assert (purpose.CodeValue, purpose.CodingSchemeDesignator) == ("MEDIM", "DCM")
    assert after.RequestAttributesSequence[0].PlacerOrderNumberImagingServiceRequest == "ORD-1"
    assert after.SpecificCharacterSet == "ISO_IR 192"
    assert after.PixelData == before.PixelData


def test_order_without_accession_empties_the_foreign_one(tmp_path):
    target = tmp_path / "out.dcm"
    reconcile_file(_source(tmp_path), target, _launch(accession_number=""), NOW)
    assert dcmread(target).AccessionNumber == ""


def test_ascii_identity_keeps_the_character_set(tmp_path):
    target = tmp_path / "out.dcm"
    reconcile_file(_source(tmp_path), target, _launch(given_name="NICOLO"), NOW)
    assert dcmread(target).SpecificCharacterSet == "ISO_IR 100"


def test_the_original_file_is_untouched(tmp_path):
    source = _source(tmp_path)
    data = source.read_bytes()
    reconcile_file(source, tmp_path / "out.dcm", _launch(), NOW)
    assert source.read_bytes() == data
