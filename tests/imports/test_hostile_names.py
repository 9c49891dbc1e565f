"""A hostile CD through the running app and a real PACS: no UID names a file, a URL or a study.

The attack: a SOP Instance UID holding ``../`` components. The pipeline named the reconciled
copy ``reconciled/<SOP Instance UID>.dcm``, so the copy left the data folder, and when a file
was already there (another patient's image, planted) that file was the one sent to the PACS
under this import. Here the planted file sits exactly where the old code would have looked.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select

from conftest import bearer, launch, pacs_settings
from imports.helpers import drain, state_of, upload, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.imports import workspace
from pacsbridge.imports.models import ImportInstance

EXTERNAL = SamplePatient(name="TEST^TEST", patient_id="EXT-88", birth_date="19740101", sex="M")
VICTIM = SamplePatient(name="ALTRO^PAZIENTE", patient_id="VICTIM-1", birth_date="19500101", sex="F")
#: From data/imports/<id>/reconciled, four levels up is the folder that holds data/: one UID
#: points at a planted file, the other at a free name the old code would have written.
ESCAPE = "../../../../planted"
LEAK = "../../../../leaked"
RETAIN = {"storage": {"retain_after_completion_hours": 1}}  # keep the files to look at them
QUEUED = {"jobs": {"backend": "sqlite"}}


def hostile_cd(root: Path, study: SampleStudy) -> list[str]:
    """A real CD of ``study`` whose second and third images claim ``ESCAPE`` and ``LEAK``."""
    write_cd(root, [study])
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name.startswith("SE"))
    for path, uid in ((files[1], ESCAPE), (files[2], LEAK)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the bad UI value, writes it
            ds = dcmread(path)
            ds.SOPInstanceUID = uid
            ds.save_as(path)
    return [path.relative_to(root).as_posix() for path in files[1:3]]


def plant(path: Path) -> SampleStudy:
    """Another patient's image where the old code would have put the reconciled copy."""
    victim = SampleStudy(patient=VICTIM, series_count=1, instances_per_series=1)
    next(victim.datasets()).save_as(path, enforce_file_format=True)
    return victim


def tree(folder: Path, skip: Path) -> dict[str, str]:
    """Every file under ``folder`` but ``skip``, with a digest of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_relative_to(skip)
    }


def test_dotdot_sop_uid_writes_nothing_outside_data_and_the_planted_file_is_not_sent(
    make_client, dcmqrscp_pacs, tmp_path
):
    pacs = dcmqrscp_pacs
    client = make_client(**pacs_settings(pacs), **QUEUED, **RETAIN)
    ctx = client.app.state.context
    planted = plant(tmp_path / "planted.dcm")
    study = SampleStudy(patient=EXTERNAL, series_count=1, instances_per_series=4)
    hostile = hostile_cd(tmp_path / "cd", study)
    before = tree(tmp_path, ctx.data_dir)
    token = launch(client)
    client.get(f"/imports/start?token={token}")  # the page cookie, as the browser gets it

    document = upload(client, token, zip_folder(tmp_path / "cd"))
    drain(client)
    import_id = document["id"]
    assert state_of(client, token, import_id) == "awaiting_confirmation"
    analysed = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()
    assert [(p["code"], p["file"]) for p in analysed["problems"]] == [
        ("media.invalid_uid", name) for name in hostile
    ]
    assert "UID non valido" in client.get(f"/imports/{import_id}/confirm").text
    with ctx.sessions() as session:
        rows = list(
            session.scalars(select(ImportInstance).where(ImportInstance.import_id == import_id))
        )
        problems = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.import_id == import_id, AuditEvent.kind == "analysis.problem"
                )
            )
        )
    assert len(rows) == 2 and not {ESCAPE, LEAK} & {r.sop_instance_uid for r in rows}
    assert [e.code for e in problems] == ["media.invalid_uid"] * 2

    answer = client.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
    assert answer.status_code == 202, answer.text
    drain(client)

    assert state_of(client, token, import_id) == "completed"
    good = {r.sop_instance_uid for r in rows}
    assert pacs.instance_uids(study.study_instance_uid) == good
    assert pacs.instance_uids(planted.study_instance_uid) == set()  # the victim stayed home
    assert tree(tmp_path, ctx.data_dir) == before  # nothing written or changed outside data/
    reconciled = workspace.folder(ctx.data_dir, import_id) / "reconciled"
    assert sorted(p.name for p in reconciled.iterdir()) == sorted(f"{r.id}.dcm" for r in rows)


def test_confirm_with_a_malformed_study_uid_is_422_naming_the_field(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    write_cd(tmp_path / "cd", [SampleStudy(patient=EXTERNAL, series_count=1)])
    import_id = upload(client, token, zip_folder(tmp_path / "cd"))["id"]
    drain(client)

    answer = client.post(
        f"/api/v1/imports/{import_id}/confirm",
        headers=bearer(token),
        json={"study_instance_uids": ["1.2.3", "../../etc/passwd", "1.02.3"]},
    )

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["study_instance_uids"]
    assert "position 1, 2" in error["fields"][0]["error"]
    assert "passwd" not in answer.text  # the hostile value is not echoed
    assert state_of(client, token, import_id) == "awaiting_confirmation"
