"""media.inspect on real files whose UIDs break the grammar (PS3.5 §9.1): named, then left out.

A CD can carry any bytes in a UI element. A SOP Instance UID holding ``../`` once named the
pipeline's stored copy and walked it out of the data folder; a URL-shaped Series Instance UID
was pasted into the confirmation page's addresses. Each hostile file here must become an
"invalid UID" problem and must not be among the instances that can be sent.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom import dcmread

from pacsbridge import media
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.media.model import INVALID_UID
from pacsbridge.messages import text

from .helpers import one_instance, save

ROSSI = SamplePatient(name="ROSSI^MARIO", patient_id="PID1", birth_date="19600102", sex="M")

HOSTILE = {
    "dotdot_sop": ("SOPInstanceUID", "../../../../imports/1/reconciled/planted"),
    "too_long_series": ("SeriesInstanceUID", "1.2." + "3" * 61),  # 65 characters
    "leading_zero_study": ("StudyInstanceUID", "1.2.840.0113619.2.55"),
    "url_series": ("SeriesInstanceUID", "1.2/../imports/start?token=x//evil.example"),
    "second_value": ("SOPInstanceUID", "1.2.3.4\\../../x"),
    "url_sop_class": ("SOPClassUID", "https://evil.example/1.2"),
    "trailing_dot": ("SOPInstanceUID", "1.2.3."),
}


def cd_with(tmp_path: Path, keyword: str, value: str) -> tuple[Path, list[str]]:
    """A real CD (DICOMDIR and three images); the middle image gets ``keyword = value``."""
    root = tmp_path / "cd"
    write_cd(root, [SampleStudy(patient=ROSSI, series_count=1, instances_per_series=3)])
    files = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.parent.name.startswith("SE")
    )
    write_uid(root / files[1], keyword, value)
    return root, files


def write_uid(path: Path, keyword: str, value: str) -> None:
    """Put ``value`` in the file as is: pydicom warns about a bad UI value but writes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path)
        meta = keyword.startswith("TransferSyntax")
        setattr(ds.file_meta if meta else ds, keyword, value)
        ds.save_as(path, implicit_vr=False, little_endian=True)
    assert value.encode() in path.read_bytes()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_file_with_a_bad_uid_is_an_invalid_uid_problem_and_left_out(tmp_path, case):
    keyword, value = HOSTILE[case]
    root, files = cd_with(tmp_path, keyword, value)

    report = media.inspect(root)

    assert report.used_dicomdir
    assert [(p.code, p.file) for p in report.problems] == [(INVALID_UID, files[1])]
    assert keyword in report.problems[0].detail
    assert value not in report.problems[0].detail  # the hostile value is not repeated
    assert [i.path for i in report.instances] == [files[0], files[2]]
    study = report.inventory.patients[0].studies[0]
    assert study.instance_count == 2
    assert all(s.series_instance_uid != value for s in study.series)


def test_invalid_uid_problem_reads_uid_non_valido():
    assert text(INVALID_UID, "it").startswith("UID non valido")
    assert text(INVALID_UID, "en").startswith("Invalid UID")


def test_file_with_a_leading_zero_transfer_syntax_is_left_out(tmp_path):
    save(one_instance(ROSSI), tmp_path / "ODDTS")
    write_uid(tmp_path / "ODDTS", "TransferSyntaxUID", "1.2.840.010008.1.2.1")
    save(one_instance(ROSSI), tmp_path / "GOOD")

    report = media.inspect(tmp_path)

    assert [i.path for i in report.instances] == ["GOOD"]
    assert [(p.code, p.file) for p in report.problems] == [(INVALID_UID, "ODDTS")]
    assert report.problems[0].detail == "invalid TransferSyntaxUID"


def test_uids_at_the_grammar_limits_are_accepted(tmp_path):
    ds = one_instance(ROSSI)
    ds.SOPInstanceUID = "1.2." + "3" * 60  # exactly 64 characters
    ds.SeriesInstanceUID = "1.0.2.0"  # a lone zero is a valid component
    save(ds, tmp_path / "EDGE")

    report = media.inspect(tmp_path)

    assert report.problems == []
    assert [i.sop_instance_uid for i in report.instances] == ["1.2." + "3" * 60]
