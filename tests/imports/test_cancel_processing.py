"""An import in ``processing`` can be cancelled: nothing more reaches the PACS, the RIS is told,
and the monitor says what had already been archived.

Against a real (slow) pynetdicom PACS and a real MLLP listener standing in for the RIS.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from conftest import bearer, launch
from imports.helpers import drain, progress_of, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.imports import workspace
from pacsbridge.imports.models import ImportInstance
from pacsbridge.imports.pipeline.send import CANCEL_POLL_SECONDS
from peers.lossy_pacs import LossyPacs

PATIENT = SamplePatient(name="TEST^TEST", patient_id="EXT9", birth_date="19740101", sex="M")
INSTANCES = 200
STORE_SECONDS = 0.01  # the slow PACS's time per C-STORE
#: What two associations may still send between the cancel and the next poll of it.
IN_FLIGHT = 2 * (int(CANCEL_POLL_SECONDS / STORE_SECONDS) + 1)


class SlowPacs(LossyPacs):
    """Keeps everything, a little slowly: a send long enough to be cancelled half-way."""

    def __init__(self) -> None:
        super().__init__(drop_every=10**9, ae_title="SLOWPACS")

    def _on_store(self, event):  # noqa: ANN001, ANN202
        time.sleep(STORE_SECONDS)
        return super()._on_store(event)


def _received(pacs: SlowPacs) -> int:
    with pacs._lock:
        return len(pacs.kept)


def test_cancel_during_the_send_stops_it_tells_the_ris_and_names_what_was_archived(
    make_client, mllp_listener, tmp_path
):  # noqa: ANN001
    pacs, ris = SlowPacs().start(), mllp_listener()
    try:
        client = make_client(
            pacs={"ae_title": pacs.ae_title, "host": pacs.host, "port": pacs.port},
            jobs={"backend": "sqlite"},
            ris={"notify": {"enabled": True, "port": ris.port}},
        )
        ctx = client.app.state.context
        token = launch(client)
        study = SampleStudy(patient=PATIENT, series_count=2, instances_per_series=INSTANCES // 2)
        write_loose(tmp_path / "usb", [study], junk=False)
        import_id = upload(client, token, zip_folder(tmp_path / "usb"))["id"]
        drain(client)
        url = f"/api/v1/imports/{import_id}"
        assert client.post(f"{url}/confirm", headers=bearer(token), json={}).status_code == 202
        worker = threading.Thread(target=drain, args=(client,))
        worker.start()
        while _received(pacs) < 60:
            time.sleep(0.005)

        answer = client.post(f"{url}/cancel", headers=bearer(token))
        at_cancel = _received(pacs)
        worker.join(timeout=120)
        time.sleep(1)

        assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
        archived = _received(pacs)
        assert archived < INSTANCES and archived <= at_cancel + IN_FLIGHT
        with ctx.sessions() as session:
            stored = session.scalar(
                select(func.count()).where(
                    ImportInstance.import_id == import_id, ImportInstance.state == "stored"
                )
            )
        assert stored == archived
        progress = progress_of(client, token, import_id)
        assert progress["state"] == "cancelled"
        assert progress["final"]["stored_count"] == archived
        assert f"{archived} di {INSTANCES} immagini" in progress["final"]["message"]
        send = next(p for p in progress["phases"] if p["phase"] == "send")
        assert send["state"] == "cancelled" and f"{archived} di {INSTANCES}" in send["message"]
        [told] = ris.received
        assert told.message_type.startswith("OMI^O23")
        assert (told.get("ORC.F1"), told.get("ORC.F5")) == ("OD", "DC")
        assert not workspace.folder(ctx.data_dir, import_id).exists()
    finally:
        pacs.stop()


def test_cancel_while_the_send_waits_for_a_retry_settles_at_once_and_tells_the_ris(
    make_client, pynetdicom_pacs, mllp_listener, relay, tmp_path
):  # noqa: ANN001
    """No worker holds the import between two attempts: the cancel itself deletes and tells."""
    ris = mllp_listener()
    peer = pynetdicom_pacs.peer
    relay.up(peer.port)
    client = make_client(
        pacs={"ae_title": peer.ae_title, "host": relay.host, "port": relay.port},
        ris={"notify": {"enabled": True, "port": ris.port}},
    )
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(patient=PATIENT, series_count=1)], junk=False)
    import_id = upload(client, token, zip_folder(tmp_path / "usb"))["id"]
    relay.down()  # the PACS goes away after the duplicate check
    url = f"/api/v1/imports/{import_id}"
    assert client.post(f"{url}/confirm", headers=bearer(token), json={}).status_code == 202
    phases = {p["phase"]: p["state"] for p in progress_of(client, token, import_id)["phases"]}
    assert phases["send"] == "retrying"

    answer = client.post(f"{url}/cancel", headers=bearer(token))

    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert not workspace.folder(ctx.data_dir, import_id).exists()
    [told] = ris.received
    assert (told.get("ORC.F1"), told.get("ORC.F5")) == ("OC", "CA")  # nothing was archived
    final = progress_of(client, token, import_id)["final"]
    assert final["stored_count"] == 0
    assert final["message"] == "Importazione annullata dall'operatore"
