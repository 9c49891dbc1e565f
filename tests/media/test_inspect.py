"""media.inspect on generated CDs and folders: DICOMDIR use, scanning, problems, inventory."""

from __future__ import annotations

import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pydicom import config
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite

from pacsbridge import media
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose

from .helpers import one_instance, save

ROSSI = SamplePatient(name="ROSSI^MARIO", patient_id="PID1", birth_date="19600102", sex="M")
BIANCHI = SamplePatient(name="BIANCHI^ANNA", patient_id="PID2", birth_date="19701231", sex="F")


def codes(problems: list[media.Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.file) for p in problems]


def cd_files(root: Path) -> list[str]:
    """Instance files of a CD written by write_cd, as POSIX paths relative to ``root``."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.parent.name.startswith("SE")
    )


# --- DICOMDIR ----------------------------------------------------------------------------------


def test_cd_with_dicomdir_is_read_through_it(tmp_path):
    ct = SampleStudy(patient=ROSSI, description="TC TORACE", series_count=2, instances_per_series=3)
    mr = SampleStudy(patient=BIANCHI, modality="MR", series_count=1, instances_per_series=2)
    write_cd(tmp_path, [ct, mr])

    report = media.inspect(tmp_path)

    assert report.used_dicomdir is True
    assert report.problems == []
    assert len(report.instances) == 8
    assert all(not i.path.upper().endswith("DICOMDIR") for i in report.instances)
    assert sorted(i.path for i in report.instances) == cd_files(tmp_path)
    anna, mario = report.inventory.patients
    assert (anna.name, anna.patient_id, anna.birth_date, anna.sex) == (
        "BIANCHI^ANNA",
        "PID2",
        "19701231",
        "F",
    )
    assert mario.name == "ROSSI^MARIO"
    (study,) = mario.studies
    assert study.study_instance_uid == ct.study_instance_uid
    assert (study.description, study.date, study.time) == ("TC TORACE", "20240601", "091454")
    assert (study.series_count, study.instance_count, study.modalities) == (2, 6, ("CT",))
    assert [s.series_number for s in study.series] == [1, 2]
    assert [i.instance_number for i in study.series[0].instances] == [1, 2, 3]
    assert anna.studies[0].modalities == ("MR",)
    assert report.inventory.conflicts == []


def test_cd_junk_is_listed_in_notes_only(tmp_path):
    write_cd(tmp_path, [SampleStudy(series_count=1, instances_per_series=1)])

    report = media.inspect(tmp_path)

    assert sorted(codes(report.notes)) == [
        ("media.not_dicom", "AUTORUN.INF"),
        ("media.not_dicom", "LOGO.PNG"),
        ("media.not_dicom", "REPORT.PDF"),
        ("media.not_dicom", "VIEWER/VIEWER.EXE"),
    ]
    assert report.problems == []


def test_file_listed_in_dicomdir_but_missing_is_a_problem(tmp_path):
    write_cd(tmp_path, [SampleStudy(series_count=1, instances_per_series=3)], junk=False)
    gone = cd_files(tmp_path)[1]
    (tmp_path / gone).unlink()

    report = media.inspect(tmp_path)

    assert codes(report.problems) == [("media.dicomdir_missing_file", gone)]
    assert len(report.instances) == 2
    assert report.used_dicomdir is True


def test_dicom_file_not_in_dicomdir_is_left_out(tmp_path):
    write_cd(tmp_path, [SampleStudy(series_count=1, instances_per_series=2)], junk=False)
    stray = one_instance(ROSSI)
    save(stray, tmp_path / "EXTRA" / "IMG1")

    report = media.inspect(tmp_path)

    assert codes(report.problems) == [("media.unreferenced_file", "EXTRA/IMG1")]
    assert stray.SOPInstanceUID not in {i.sop_instance_uid for i in report.instances}
    assert len(report.instances) == 2


def test_corrupt_dicomdir_falls_back_to_scanning(tmp_path):
    dicomdir = write_cd(tmp_path, [SampleStudy(series_count=1, instances_per_series=3)])
    dicomdir.write_bytes(dicomdir.read_bytes()[:300])

    report = media.inspect(tmp_path)

    assert report.used_dicomdir is False
    assert codes(report.problems) == [("media.dicomdir_unreadable", "DICOMDIR")]
    assert sorted(i.path for i in report.instances) == cd_files(tmp_path)
    assert "DICOMDIR" not in {n.file for n in report.notes}


def test_names_are_matched_without_case(tmp_path):
    """CD burners upper-case names; a copy made on another system may lower-case them."""
    write_cd(tmp_path, [SampleStudy(series_count=1, instances_per_series=2)], junk=False)
    expected = [p.lower() for p in cd_files(tmp_path)]
    for path in sorted(tmp_path.rglob("*"), key=lambda p: -len(p.parts)):
        path.rename(path.with_name(path.name.lower()))

    report = media.inspect(tmp_path)

    assert report.used_dicomdir is True
    assert report.problems == []
    assert [i.path for i in report.instances] == expected
    assert (tmp_path / "dicomdir").exists()


# --- scanning --------------------------------------------------------------------------------


def test_loose_folder_is_scanned(tmp_path):
    study = SampleStudy(patient=ROSSI, series_count=2, instances_per_series=2)
    write_loose(tmp_path, [study])

    report = media.inspect(tmp_path)

    assert report.used_dicomdir is False
    assert report.problems == []
    assert [i.path for i in report.instances] == [f"images/IMG0000{n}.dcm" for n in range(1, 5)]
    assert len(report.notes) == 4
    header = report.instances[0]
    assert header.study_instance_uid == study.study_instance_uid
    assert header.size_bytes == (tmp_path / header.path).stat().st_size
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert header.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert (header.patient_id, header.patient_birth_date, header.patient_sex) == (
        "PID1",
        "19600102",
        "M",
    )
    assert (header.series_number, header.instance_number, header.modality) == (1, 1, "CT")


def test_copies_of_several_cds_are_scanned(tmp_path):
    """DICOMDIRs below the root describe their own folder only: scan, and just note them."""
    write_cd(tmp_path / "CD1", [SampleStudy(series_count=1, instances_per_series=2)], junk=False)
    write_cd(tmp_path / "CD2", [SampleStudy(series_count=1, instances_per_series=3)], junk=False)

    report = media.inspect(tmp_path)

    assert report.used_dicomdir is False
    assert len(report.instances) == 5
    assert report.problems == []
    assert codes(report.notes) == [
        ("media.not_dicom", "CD1/DICOMDIR"),
        ("media.not_dicom", "CD2/DICOMDIR"),
    ]


def test_file_without_preamble_is_still_read(tmp_path):
    ds = one_instance(ROSSI)
    ds.preamble = None
    ds.file_meta = FileMetaDataset()
    dcmwrite(tmp_path / "OLD0001", ds, implicit_vr=True, little_endian=True)
    assert (tmp_path / "OLD0001").read_bytes()[128:132] != b"DICM"

    report = media.inspect(tmp_path)

    (header,) = report.instances
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.patient_name == "ROSSI^MARIO"
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2"
    assert report.problems == report.notes == []


@pytest.mark.parametrize("keep", [2000, 600], ids=["in-pixel-data", "in-header"])
def test_truncated_file_is_a_problem(tmp_path, keep):
    paths = write_loose(tmp_path, [SampleStudy(series_count=1, instances_per_series=2)], False)
    data = paths[0].read_bytes()
    assert len(data) > keep
    paths[0].write_bytes(data[:keep])

    report = media.inspect(tmp_path)

    assert codes(report.problems) == [("media.unreadable_file", "images/IMG00001.dcm")]
    assert [i.path for i in report.instances] == ["images/IMG00002.dcm"]


def test_truncated_encapsulated_pixel_data_is_a_problem(tmp_path):
    ds = one_instance(ROSSI)
    ds.compress("1.2.840.10008.1.2.5")  # RLE Lossless: fragments with undefined length
    path = save(ds, tmp_path / "RLE.dcm")
    intact = media.inspect(tmp_path)
    path.write_bytes(path.read_bytes()[:-20])

    broken = media.inspect(tmp_path)

    assert len(intact.instances) == 1 and intact.problems == []
    assert codes(broken.problems) == [("media.unreadable_file", "RLE.dcm")]
    assert broken.instances == []


def test_file_without_series_uid_is_left_out(tmp_path):
    ds = one_instance(ROSSI)
    del ds.SeriesInstanceUID
    save(ds, tmp_path / "NOSERIES.dcm")
    save(one_instance(ROSSI), tmp_path / "OK.dcm")

    report = media.inspect(tmp_path)

    assert codes(report.problems) == [("media.missing_uid", "NOSERIES.dcm")]
    assert "SeriesInstanceUID" in report.problems[0].detail
    assert [i.path for i in report.instances] == ["OK.dcm"]


def test_same_sop_instance_twice_keeps_the_first(tmp_path):
    path = save(one_instance(ROSSI), tmp_path / "A" / "IMG1")
    shutil.copy(path, tmp_path / "B")

    report = media.inspect(tmp_path)

    assert [i.path for i in report.instances] == ["A/IMG1"]
    assert codes(report.problems) == [("media.duplicate_instance", "B")]
    assert "A/IMG1" in report.problems[0].detail


def test_symbolic_links_are_not_followed(tmp_path):
    outside = save(one_instance(ROSSI), tmp_path / "outside" / "IMG1")
    root = tmp_path / "media"
    root.mkdir()
    os.symlink(outside, root / "LINK")
    os.symlink(outside.parent, root / "FOLDER")

    report = media.inspect(root)

    assert report.instances == report.problems == report.notes == []


def test_pixel_data_are_not_loaded(tmp_path):
    """Headers only: a 40 MB image must not cost 40 MB of memory."""
    ds = one_instance(ROSSI)
    ds.Rows, ds.Columns = 4096, 5120
    ds.PixelData = np.zeros((4096, 5120), "<u2").tobytes()
    save(ds, tmp_path / "BIG.dcm")
    del ds

    tracemalloc.start()
    try:
        report = media.inspect(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(report.instances) == 1
    assert peak < 2_000_000


# --- character sets ------------------------------------------------------------------------


def test_latin1_name_is_decoded(tmp_path):
    patient = SamplePatient(name="NICOLÒ^ROSSÌ", charset="ISO_IR 100")
    path = save(one_instance(patient), tmp_path / "IMG1")
    assert b"NICOL\xd2^ROSS\xcc" in path.read_bytes()

    (header,) = media.inspect(tmp_path).instances

    assert header.patient_name == "NICOLÒ^ROSSÌ"
    assert header.specific_character_set == "ISO_IR 100"


def test_utf8_name_is_decoded(tmp_path):
    patient = SamplePatient(name="ŻÓŁW^ŁUKASZ=王^小东", charset="ISO_IR 192")
    save(one_instance(patient), tmp_path / "IMG1")

    (header,) = media.inspect(tmp_path).instances

    assert header.patient_name == "ŻÓŁW^ŁUKASZ=王^小东"
    assert header.specific_character_set == "ISO_IR 192"


def test_iso2022_japanese_name_is_decoded(tmp_path):
    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    patient = SamplePatient(name=name, charset="\\ISO 2022 IR 87")
    path = save(one_instance(patient), tmp_path / "IMG1")
    assert b"\x1b$B" in path.read_bytes()  # really written with ISO 2022 escapes

    (header,) = media.inspect(tmp_path).instances

    assert header.patient_name == name
    assert header.specific_character_set == "\\ISO 2022 IR 87"


def write_unknown_charset(folder: Path) -> None:
    ds = one_instance(SamplePatient(name="NICOLÒ^ROSSÌ", charset="ISO_IR 100"))
    save(ds, folder / "IMG1")
    data = (folder / "IMG1").read_bytes().replace(b"ISO_IR 100", b"ISO_IR 999")
    (folder / "IMG1").write_bytes(data)


def test_unknown_charset_falls_back_to_latin1(tmp_path):
    write_unknown_charset(tmp_path)

    (header,) = media.inspect(tmp_path).instances

    assert header.patient_name == "NICOLÒ^ROSSÌ"
    assert header.specific_character_set == "ISO_IR 999"


@pytest.fixture(params=[config.WARN, config.RAISE], ids=["warn", "strict"])
def validation_mode(request):
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = request.param
    yield request.param
    config.settings.reading_validation_mode = previous


def test_malformed_number_reads_as_none(tmp_path, validation_mode):
    ds = one_instance(ROSSI)
    ds.SeriesNumber = 77
    path = save(ds, tmp_path / "IMG1")
    element = b"\x20\x00\x11\x00IS\x02\x00"
    assert element + b"77" in path.read_bytes()
    path.write_bytes(path.read_bytes().replace(element + b"77", element + b"7x"))

    (header,) = media.inspect(tmp_path).instances

    assert header.series_number is None
    assert header.instance_number == 1


# --- inventory -------------------------------------------------------------------------------


def test_one_patient_id_with_two_names_is_a_conflict(tmp_path):
    first = SampleStudy(patient=ROSSI, series_count=1, instances_per_series=1)
    other = SamplePatient(name="VERDI^LUIGI", patient_id="PID1", birth_date="19600102", sex="M")
    second = SampleStudy(patient=other, series_count=1, instances_per_series=1)
    padded = SamplePatient(name="BIANCHI^ANNA^^", patient_id="PID2", birth_date="19701231")
    third = SampleStudy(patient=BIANCHI, series_count=1, instances_per_series=1)
    fourth = SampleStudy(patient=padded, series_count=1, instances_per_series=1)
    write_loose(tmp_path, [first, second, third, fourth], junk=False)

    inventory = media.inspect(tmp_path).inventory

    assert inventory.conflicts == ["PID1"]
    assert [(p.name, p.patient_id) for p in inventory.patients] == [
        ("BIANCHI^ANNA", "PID2"),
        ("BIANCHI^ANNA^^", "PID2"),
        ("ROSSI^MARIO", "PID1"),
        ("VERDI^LUIGI", "PID1"),
    ]


def test_other_patient_ids_come_from_sequence_and_retired_attribute(tmp_path):
    patient = SamplePatient(issuer="ASL1", other_ids=("RSSMRA60A02H501X", "OLD-7"))
    ds = one_instance(patient)
    ds.OtherPatientIDs = ["OLD-7", "ARCHIVE-3"]
    save(ds, tmp_path / "IMG1")

    report = media.inspect(tmp_path)

    assert report.instances[0].other_patient_ids == ("RSSMRA60A02H501X", "OLD-7", "ARCHIVE-3")
    (group,) = report.inventory.patients
    assert group.issuer == "ASL1"
    assert group.other_patient_ids == ("ARCHIVE-3", "OLD-7", "RSSMRA60A02H501X")


def test_order_is_numeric_and_stable(tmp_path):
    study = SampleStudy(patient=ROSSI, series_count=1, instances_per_series=1)
    for series_number, instance_number, name in [(10, 2, "a"), (10, 10, "b"), (2, 1, "c")]:
        ds = one_instance(ROSSI, study_instance_uid=study.study_instance_uid)
        ds.SeriesInstanceUID = f"1.2.3.{series_number}"
        ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
        save(ds, tmp_path / name)
    later = SampleStudy(patient=ROSSI, study_date="20250101", series_count=1)
    earlier = SampleStudy(patient=ROSSI, study_date="20200101", series_count=1)
    write_loose(tmp_path / "more", [later, earlier], junk=False)

    (patient,) = media.inspect(tmp_path).inventory.patients

    assert [s.date for s in patient.studies] == ["20200101", "20240601", "20250101"]
    (_, study_2024, _) = patient.studies
    assert [s.series_number for s in study_2024.series] == [2, 10]
    assert [i.instance_number for i in study_2024.series[1].instances] == [2, 10]
