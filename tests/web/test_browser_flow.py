"""The whole operator flow in headless Chromium against a real server and a real PACS."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pydicom import dcmread

from conftest import LAUNCH_BODY
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd, write_loose
from pacsbridge.dicomnet.find import find_instance_uids, find_study
from pacsbridge.dicomnet.peers import LocalAE

from .conftest import launch_url, screenshot

pytestmark = pytest.mark.browser

MATCHING = SamplePatient(name="TEST^TEST", patient_id="97119460", birth_date="19740101", sex="M")
OTHER = SamplePatient(name="CERRI^SIMONE", patient_id="97119461", birth_date="19720530", sex="M")


def open_launch(page: Any, server: Any) -> None:
    """Open the RIS link; the start page moves the token into the cookie and refreshes."""
    page.goto(launch_url(server))
    page.wait_for_url(f"{server.url}/imports")  # the token left the address bar


def send_folder(page: Any, folder: Path) -> None:
    page.set_input_files("#folder-input", str(folder))
    expect(page.locator("#send")).to_be_visible()
    page.click("#send")


def test_cd_with_dicomdir_is_imported_into_the_pacs(
    page: Any, live_with_pacs: Any, demo_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    study = SampleStudy(patient=MATCHING, description="TC TORACE", accession_number="EXT001")
    write_cd(tmp_path / "cd", [study])
    open_launch(page, server)
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
    screenshot(page, "01-import-page")
    page.set_input_files("#folder-input", str(tmp_path / "cd"))
    expect(page.locator("#summary-mode")).to_contain_text("DICOMDIR trovato")
    expect(page.locator("#summary-counts")).to_contain_text("9 file da inviare")  # + 2 documents
    expect(page.locator("#dicomdir-patients")).to_contain_text("TEST TEST")
    expect(page.locator("#dicomdir-patients")).to_contain_text("TC TORACE")
    screenshot(page, "02-found-files")
    held: list[Any] = []  # hold the first poll of the analysis: time to look at the bars
    poll = re.compile(r".*/api/v1/imports/\d+$")
    page.route(poll, lambda route: held.append(route))
    page.click("#send")
    for bar in ("#zip-bar", "#upload-bar"):
        expect(page.locator(bar)).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#upload-text")).to_contain_text("(100 %)")
    expect(page.locator("#upload-rate")).to_be_hidden()  # a few KB: no speed, no time left
    expect(page.locator("#status")).to_contain_text("Attesa conferma dal server")
    screenshot(page, "03-sent")
    for route in held:
        route.continue_()
    page.unroute(poll)
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    expect(page.locator("h1, .navbar-text").first).to_be_visible()
    expect(page.locator(".verification")).to_contain_text("PAZIENTE CORRISPONDE")
    expect(page.locator(".study-description")).to_have_text("TC TORACE")
    confirm = page.locator("#confirm")
    expect(confirm).to_have_class(re.compile(r"btn-success.*btn-lg"))
    expect(page.locator("img.thumb")).to_have_count(2)
    screenshot(page, "04-confirmation-match")
    confirm.click()
    page.wait_for_url(re.compile(r"/imports/\d+/monitor$"))
    expect(page.locator("#final")).to_have_text("Elaborazione Ultimata", timeout=30_000)
    expect(page.locator("#close-hint")).to_contain_text("Id per assistenza")
    expect(page.locator("#events")).to_contain_text("Importazione confermata")
    screenshot(page, "05-monitor-completed")
    checker = LocalAE(ae_title="CHECKER", connection_timeout=3, acse_timeout=5)
    sent = {str(dcmread(p).SOPInstanceUID) for p in (tmp_path / "cd").rglob("IM*")}
    assert len(sent) == 6
    held = find_instance_uids(checker, demo_pacs.peer, study.study_instance_uid)  # C-FIND IMAGE
    assert held == sent
    on_pacs = find_study(checker, demo_pacs.peer, study.study_instance_uid)
    assert on_pacs is not None and on_pacs.patient_id == LAUNCH_BODY["patient"]["id"]


def test_mismatched_patient_makes_confirm_small_and_red_and_asks_again(
    page: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    hostile = SamplePatient(
        name="<b>CERRI</b>^<script>alert(1)</script>",
        patient_id="97119461",
        birth_date="19720530",
        sex="M",
    )
    write_cd(tmp_path / "cd", [SampleStudy(patient=hostile, description="COLONSCOPIA")])
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    open_launch(page, server)
    page.set_input_files("#folder-input", str(tmp_path / "cd"))
    expect(page.locator("#dicomdir-patients")).to_contain_text("<script>alert(1)</script>")
    page.click("#send")
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    expect(page.locator(".dicom-patient .patient-name")).to_contain_text("<b>CERRI</b>")
    expect(page.locator(".verification")).to_contain_text("NOME NON CORRISPONDE")
    expect(page.locator(".verification")).to_contain_text("DATA NASCITA NON CORRISPONDE")
    expect(page.locator(".verification .text-bg-danger").first).to_be_visible()
    confirm, cancel = page.locator("#confirm"), page.locator("#cancel")
    expect(confirm).to_have_class(re.compile(r"\bbtn-danger\b.*\bbtn-sm\b"))
    expect(cancel).to_have_class(re.compile(r"\bbtn-primary\b.*\bbtn-lg\b"))
    assert confirm.bounding_box()["height"] < cancel.bounding_box()["height"]
    screenshot(page, "06-confirmation-mismatch")
    confirm.click()
    dialog = page.locator("#mismatch-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#discrepancies")).to_contain_text("NOME NON CORRISPONDE")
    expect(page.locator("#discrepancies")).to_contain_text("<script>alert(1)</script>")
    screenshot(page, "07-mismatch-dialog")
    page.click("#dialog-back")
    expect(dialog).to_be_hidden()
    assert "/confirm" in page.url  # nothing was confirmed
    confirm.click()
    expect(dialog).to_be_visible()
    page.click("#confirm-anyway")
    page.wait_for_url(re.compile(r"/imports/\d+/monitor$"))


def test_cancel_deletes_the_temporary_files(page: Any, live: Any, tmp_path: Path) -> None:
    from pacsbridge.imports import workspace

    server = live()  # no PACS: the duplicate check cannot be done, so nothing can be confirmed
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING)])
    open_launch(page, server)
    send_folder(page, tmp_path / "cd")
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    import_id = int(page.url.split("/")[-2])
    expect(page.locator(".study-notice")).to_contain_text("PACS non raggiungibile")
    expect(page.locator("#confirm")).to_have_count(0)
    assert workspace.folder(server.context.data_dir, import_id).exists()
    page.click("#cancel")
    page.wait_for_url(re.compile(r"/imports/\d+/cancelled$"))
    expect(page.locator("#cancelled")).to_contain_text("annullata")
    screenshot(page, "08-cancelled")
    assert not workspace.folder(server.context.data_dir, import_id).exists()


def test_upload_resumes_after_a_dropped_connection(page: Any, live: Any, tmp_path: Path) -> None:
    from pacsbridge.imports.models import Import

    server = live()
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=3)])
    puts: list[str] = []

    def drop_second_put(route: Any) -> None:
        if route.request.method == "PUT":
            puts.append(route.request.headers.get("content-range", ""))
            if len(puts) == 2:
                route.abort("connectionreset")
                return
        route.continue_()

    page.route(re.compile(r".*/api/v1/imports/\d+/archive$"), drop_second_put)
    open_launch(page, server)
    send_folder(page, tmp_path / "cd")
    expect(page.locator("#status")).to_contain_text("Connessione persa")
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"), timeout=30_000)
    import_id = int(page.url.split("/")[-2])
    with server.context.sessions() as session:
        row = session.get(Import, import_id)
        assert row.received_bytes == row.archive_size
        size = row.archive_size
    # The dropped part was sent again from the same offset (after the part sent ahead of it).
    assert puts.count(puts[1]) == 2
    assert puts[-1].endswith(f"-{size - 1}/{size}")
    assert len(puts) > 3


def test_dropped_loose_files_without_dicomdir(page: Any, live: Any, tmp_path: Path) -> None:
    server = live()
    write_loose(tmp_path / "usb", [SampleStudy(patient=MATCHING, series_count=1)], junk=True)
    files = [p for p in sorted((tmp_path / "usb").rglob("*")) if p.is_file()]
    open_launch(page, server)
    page.click("#tab-drop")
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name));
            }
            return transfer;
        }""",
        [{"name": p.name, "data": base64.b64encode(p.read_bytes()).decode()} for p in files],
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#summary-mode")).to_contain_text("DICOMDIR assente")
    expect(page.locator("#summary-counts")).to_contain_text("5 file da inviare")
    expect(page.locator("#summary-warnings")).to_contain_text("2 file esclusi")
    expect(page.locator("#summary-warnings")).to_contain_text("Inviati anche 2 documenti")
    screenshot(page, "09-dropped-files")
    page.click("#send")
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    expect(page.locator(".verification")).to_contain_text("PAZIENTE CORRISPONDE")
