"""The HL7 v2.5 messages an import sends, as a real MLLP listener receives them, field by field.

Contract (docs/integration-ris.md, hl7v2.messages): ADT^A40 merges the media's Patient ID
(MRG-1) into the RIS patient (PID-3), who survives; OMI^O23 tells the RIS the order's images are
archived (ORC-1/5 SC/CM), or that the import stopped (OD/DC with some archived, NTE the reason),
with one IPC per study (IPC-3 its Study Instance UID) and OBX sub-id k counting the k-th study's
instances. Messages are parsed with python-hl7 by the listener (tests/peers/mllp.py).
"""

from __future__ import annotations

from pathlib import Path

from conftest import LAUNCH_BODY, bearer, launch, pacs_settings
from imports.helpers import drain, state_of, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose

ACKNOWLEDGED = {"identity_acknowledged": True}
RIS = LAUNCH_BODY["patient"]
ORDER = LAUNCH_BODY["order"]
FIRST = SamplePatient(name="ROSSI^MARIO", patient_id="EXT-1", birth_date="19600101", sex="M")
SECOND = SamplePatient(name="ROSSI^M", patient_id="EXT-2", birth_date="19600101", sex="M")


def _run(client, token: str, folder: Path) -> int:  # noqa: ANN001
    document = upload(client, token, zip_folder(folder))
    drain(client)
    import_id = document["id"]
    assert state_of(client, token, import_id) == "awaiting_confirmation"
    answer = client.post(
        f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json=ACKNOWLEDGED
    )
    assert answer.status_code == 202, answer.text
    drain(client)
    return import_id


def _segments(received, name: str) -> list:  # noqa: ANN001
    return [s for s in received.message if str(s[0]) == name]


def _assert_ris_patient(received) -> None:  # noqa: ANN001
    assert received.get("PID.F3.R1.C1") == RIS["id"]
    assert received.get("PID.F3.R1.C4") == RIS["issuer"]
    assert received.get("PID.F5.R1.C1") == RIS["family_name"]
    assert received.get("PID.F5.R1.C2") == RIS["given_name"]
    assert received.get("PID.F7") == RIS["birth_date"].replace("-", "")
    assert received.get("PID.F8") == RIS["sex"]


def test_merge_and_order_messages_carry_the_right_patient_order_uids_and_counts(
    make_client, pynetdicom_pacs, mllp_listener, tmp_path
):  # noqa: ANN001
    pacs_hl7, ris = mllp_listener(), mllp_listener()
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        jobs={"backend": "sqlite"},
        merge={"enabled": True, "port": pacs_hl7.port},
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    token = launch(client)
    studies = [
        SampleStudy(patient=FIRST, series_count=1, instances_per_series=3),
        SampleStudy(patient=SECOND, series_count=1, instances_per_series=5),
    ]
    write_loose(tmp_path / "usb", studies, junk=False)
    import_id = _run(client, token, tmp_path / "usb")
    assert state_of(client, token, import_id) == "completed"

    merges = pacs_hl7.received
    assert [m.message_type for m in merges] == ["ADT^A40^ADT_A39"] * 2
    merged_away = set()
    for index, merge in enumerate(merges):
        assert merge.control_id == f"PB{import_id}M{index}"
        assert merge.get("MSH.F12") == "2.5" and merge.get("MSH.F18") == "8859/1"
        assert merge.get("EVN.F1") == "A40"
        _assert_ris_patient(merge)  # PID: the survivor is the RIS patient
        merged_away.add((merge.get("MRG.F1.R1.C1"), merge.get("MRG.F7.R1.C2")))
        assert merge.get("MRG.F7.R1.C1") == "ROSSI"
    assert merged_away == {("EXT-1", "MARIO"), ("EXT-2", "M")}  # MRG: the media's ids

    (notice,) = ris.received
    assert notice.message_type == "OMI^O23^OMI_O23"
    assert notice.control_id == f"PB{import_id}N"
    _assert_ris_patient(notice)
    assert (notice.get("ORC.F1"), notice.get("ORC.F5")) == ("SC", "CM")
    assert notice.get("ORC.F2") == notice.get("ORC.F3") == ORDER["number"]
    assert notice.get("ORC.F16.R1.C1") == "EXTIMPORT"
    assert notice.get("OBR.F4.R1.C1") == "EXTIMPORT"
    assert notice.get("OBR.F18") == ORDER["accession_number"]
    assert _segments(notice, "NTE") == []
    _assert_studies(notice, {s.study_instance_uid: n for s, n in zip(studies, (3, 5), strict=True)})


def _assert_studies(notice, expected: dict[str, int]) -> None:  # noqa: ANN001
    """One IPC per study; the OBX count with sub-id k belongs to the k-th IPC's study."""
    ipcs = _segments(notice, "IPC")
    assert [str(ipc(1)) for ipc in ipcs] == [ORDER["accession_number"]] * len(expected)
    assert [str(ipc(2)) for ipc in ipcs] == [ORDER["number"]] * len(expected)
    assert [str(ipc(4)) for ipc in ipcs] == ["EXTIMPORT"] * len(expected)
    uids = [str(ipc(3)) for ipc in ipcs]
    assert sorted(uids) == sorted(expected)
    counts = {
        int(str(obx(4))): int(str(obx(5)))
        for obx in _segments(notice, "OBX")
        if str(obx(3)).startswith("EXTIMPORT-COUNT")
    }
    assert {uids[k - 1]: count for k, count in counts.items()} == expected
    assert all(str(obx(2)) == "NM" for obx in _segments(notice, "OBX") if str(obx(2)) != "ST")


def test_discontinuation_counts_only_instances_the_pacs_confirmed_and_gives_the_reason(
    make_client, lossy_pacs, mllp_listener, tmp_path
):  # noqa: ANN001
    pacs = lossy_pacs(drop_every=3)
    ris = mllp_listener()
    client = make_client(
        **pacs_settings(pacs),
        jobs={"backend": "sqlite", "attempts": 1},
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    token = launch(client)
    study = SampleStudy(patient=FIRST, series_count=1, instances_per_series=6)
    files = write_loose(tmp_path / "usb", [study], junk=False)
    import_id = _run(client, token, tmp_path / "usb")
    assert state_of(client, token, import_id) == "failed"
    kept = pacs.instance_uids(study.study_instance_uid)
    assert len(kept) == 4 and len(files) == 6

    (notice,) = ris.received
    assert notice.message_type == "OMI^O23^OMI_O23"
    assert notice.control_id == f"PB{import_id}D"
    _assert_ris_patient(notice)
    assert (notice.get("ORC.F1"), notice.get("ORC.F5")) == ("OD", "DC")
    (note,) = _segments(notice, "NTE")
    assert "non conferma 2 immagini" in str(note(3))
    _assert_studies(notice, {study.study_instance_uid: 4})  # what the PACS holds, not sent


def test_discontinuation_with_nothing_archived_is_a_cancel(
    make_client, pynetdicom_pacs, mllp_listener, tmp_path
):  # noqa: ANN001
    ris = mllp_listener()
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        jobs={"backend": "sqlite"},
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    ctx = client.app.state.context
    token = launch(client)
    study = SampleStudy(patient=FIRST, series_count=1, instances_per_series=2)
    write_loose(tmp_path / "usb", [study], junk=False)
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    drain(client)
    victim = next((Path(ctx.data_dir)).rglob("IMG00001.dcm"))
    victim.write_bytes(victim.read_bytes()[:-100])  # verification fails: nothing is sent
    answer = client.post(
        f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token), json=ACKNOWLEDGED
    )
    assert answer.status_code == 202, answer.text
    drain(client)

    assert state_of(client, token, document["id"]) == "failed"
    (notice,) = ris.received
    assert (notice.get("ORC.F1"), notice.get("ORC.F5")) == ("OC", "CA")
    assert len(_segments(notice, "NTE")) == 1
    _assert_studies(notice, {study.study_instance_uid: 0})
    assert victim.exists()  # nothing received is deleted on failure
