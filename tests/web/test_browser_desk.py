"""The operator pages on a front-desk screen: 1366×768 in headless Chromium.

Each test asserts what is inside the viewport (bounding boxes within 0..1366 × 0..768 with the
page not scrolled), not only what is somewhere in the page, and that the words match the state.
The y positions measured are written to ``test-artifacts/web/desk-positions.json``.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import LAUNCH_BODY, RIS_KEY, bearer
from imports.helpers import zip_folder
from pacsbridge.demo.pacs import DemoPacs
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.errors import PacsbridgeError
from pacsbridge.imports import analysis

from .conftest import ARTIFACTS
from .live import free_port

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1366, 768
MATCHING = SamplePatient(name="TEST^TEST", patient_id="97119460", birth_date="19740101", sex="M")
OTHER = SamplePatient(name="CERRI^SIMONE", patient_id="97119461", birth_date="19720530", sex="F")
POSITIONS: dict[str, float] = {}


@pytest.fixture
def desk(browser: Any) -> Any:
    """An Italian browser at 1366×768, the screen of a radiology front desk."""
    context = browser.new_context(locale="it-IT", viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture(scope="module", autouse=True)
def _record_positions() -> Any:
    yield
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "desk-positions.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, **POSITIONS}, indent=2, sort_keys=True))


def assert_in_view(
    page: Any, selector: str, name: str | None = None, scrolled: bool = False
) -> dict[str, float]:
    """The element is visible inside the 1366×768 viewport and the page is not scrolled
    (``scrolled``: the operator scrolled to something else, this element must still be in view)."""
    element = page.locator(selector).first
    expect(element).to_be_visible()
    if not scrolled:
        assert page.evaluate("window.scrollY") == 0, "the page was scrolled"
    box = element.bounding_box()
    assert box is not None, selector
    POSITIONS[name or selector] = round(box["y"] + box["height"])
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (selector, box)
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (selector, box)
    return box


def screenshot(page: Any, name: str) -> None:
    """What the technician sees: the viewport, not the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def api_client(server: Any) -> tuple[httpx.Client, dict[str, str], str]:
    client = httpx.Client(base_url=server.url)
    launched = client.post("/api/v1/launch", json=LAUNCH_BODY, headers=bearer(RIS_KEY)).json()
    return client, bearer(launched["token"]), launched["url"]


def open_link(page: Any, server: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_url(f"{server.url}/imports")


def analysed(server: Any, client: httpx.Client, auth: dict[str, str], folder: Path) -> int:
    """An import uploaded through the API and analysed as the worker would."""
    import_id = client.post("/api/v1/imports", headers=auth).json()["id"]
    client.put(f"/api/v1/imports/{import_id}/archive", content=zip_folder(folder), headers=auth)
    analysis.analyse(server.context, import_id)
    return import_id


def confirmed(server: Any, client: httpx.Client, auth: dict[str, str], folder: Path) -> int:
    import_id = analysed(server, client, auth, folder)
    answer = client.post(f"/api/v1/imports/{import_id}/confirm", headers=auth)
    assert answer.status_code == 202, answer.text
    return import_id


# --- 1. nothing important below the fold ----------------------------------------------------


def test_upload_bars_are_inside_the_viewport_while_they_run(
    desk: Any, live: Any, tmp_path: Path
) -> None:
    server = live()
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=2)])
    client, auth, url = api_client(server)
    for _ in range(5):  # five earlier attempts in "Importazioni Precedenti"
        client.post("/api/v1/imports", headers=auth)
    open_link(desk, server, url)
    desk.set_input_files("#folder-input", str(tmp_path / "cd"))
    assert_in_view(desk, "#send", "upload: Comprimi e Invia Studio bottom")
    held: list[Any] = []
    poll = re.compile(r".*/api/v1/imports/\d+$")
    desk.route(poll, lambda route: held.append(route))
    desk.click("#send")
    expect(desk.locator("#upload-bar")).to_have_attribute("aria-valuenow", "100")
    for bar in ("#zip-label", "#zip-bar", "#upload-label", "#upload-bar", "#status"):
        assert_in_view(desk, bar, f"upload progress {bar} bottom")
    assert_in_view(desk, "#ris-patient-name")
    screenshot(desk, "desk-01-upload-progress")
    for route in held:
        route.continue_()
    desk.unroute(poll)
    desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))


def test_confirm_and_cancel_stay_in_view_with_a_matching_patient(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=4)])
    client, auth, url = api_client(server)
    import_id = analysed(server, client, auth, tmp_path / "cd")
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/confirm")
    confirm = assert_in_view(desk, "#confirm", "match #confirm bottom")
    cancel = assert_in_view(desk, "#cancel", "match #cancel bottom")
    assert_in_view(desk, "#action-bar .verdict", "match verdict in the action bar")
    expect(desk.locator("#confirm")).to_have_class(re.compile(r"\bbtn-success\b.*\bbtn-lg\b"))
    expect(desk.locator("#action-bar .verdict").first).to_have_text("PAZIENTE CORRISPONDE")
    assert confirm["height"] > cancel["height"]  # CONFERMA large and green with a match
    screenshot(desk, "desk-02-confirm-match")


def test_confirm_and_cancel_stay_in_view_on_a_mismatch_with_their_size_swapped(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    studies = [SampleStudy(patient=OTHER, series_count=3) for _ in range(2)]
    write_cd(tmp_path / "cd", studies)
    client, auth, url = api_client(server)
    import_id = analysed(server, client, auth, tmp_path / "cd")
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/confirm")
    expect(desk.locator("#identity-warning")).to_be_visible()
    confirm = assert_in_view(desk, "#confirm", "mismatch #confirm bottom")
    cancel = assert_in_view(desk, "#cancel", "mismatch #cancel bottom")
    expect(desk.locator("#confirm")).to_have_class(re.compile(r"\bbtn-danger\b.*\bbtn-sm\b"))
    expect(desk.locator("#cancel")).to_have_class(re.compile(r"\bbtn-primary\b.*\bbtn-lg\b"))
    assert confirm["height"] < cancel["height"]
    badges = desk.locator("#action-bar .verdict")
    expect(badges.first).to_contain_text("NOME NON CORRISPONDE")
    for index in range(badges.count()):
        assert_in_view(desk, f"#action-bar .verdict >> nth={index}")
    screenshot(desk, "desk-03-confirm-mismatch")


def test_history_shows_the_latest_rows_and_keeps_select_folder_in_view(
    desk: Any, live: Any
) -> None:
    server = live()
    client, auth, url = api_client(server)
    ids = [client.post("/api/v1/imports", headers=auth).json()["id"] for _ in range(5)]
    for import_id in ids[2:]:  # the three latest were cancelled: they link to their monitor
        client.post(f"/api/v1/imports/{import_id}/cancel", headers=auth)
    open_link(desk, server, url)
    rows = desk.locator("#history tbody tr")
    expect(rows).to_have_count(5)
    expect(desk.locator("#history tbody tr:visible")).to_have_count(3)
    assert_in_view(desk, "#choose-folder", "history 5 rows: Seleziona Cartella bottom")
    assert_in_view(desk, "#history-more")
    expect(desk.locator("#history-more")).to_contain_text("mostra tutte (5)")
    for cell in ("td.requested-at", "td.link a"):
        for index in range(3):
            box = desk.locator(f"#history tbody tr >> nth={index} >> {cell}").bounding_box()
            line = desk.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)")
            assert box["height"] < 2 * line, f"{cell} wraps"
    cancelled = desk.locator(f"#history tr[data-import-id='{ids[4]}'] .badge")
    expect(cancelled).to_have_text("Annullata")
    expect(cancelled).to_have_class(re.compile(r"text-bg-secondary"))
    assert_in_view(desk, f"#history tr[data-import-id='{ids[4]}'] .badge")
    desk.click("#history-more")
    expect(desk.locator("#history tbody tr:visible")).to_have_count(5)
    expect(desk.locator(f"#history tr[data-import-id='{ids[0]}'] .badge")).to_have_text(
        "Richiesta creata"
    )
    screenshot(desk, "desk-04-history")


# --- 2. words that match the state ----------------------------------------------------------


@pytest.fixture
def own_pacs(tmp_path: Path) -> Any:
    """A PACS of this test only, on a free port: started and stopped as the test needs."""
    pacs = DemoPacs(folder=tmp_path / "own-pacs", port=free_port())
    (tmp_path / "own-pacs").mkdir()
    yield pacs
    pacs.stop()


def pacs_settings(pacs: DemoPacs) -> dict[str, Any]:
    return {"pacs": {"ae_title": pacs.ae_title, "host": "127.0.0.1", "port": pacs.port}}


def monitor_of(desk: Any, server: Any, url: str, import_id: int) -> None:
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/monitor")


def wait_for_polls(desk: Any, count: int = 2) -> None:
    """Let the page's live updates run ``count`` times (each poll asks for the progress)."""
    for _ in range(count):
        with desk.expect_response(re.compile(r".*/progress$")):
            pass


def test_monitor_of_a_completed_import_says_so_and_shows_attempts_only_where_they_count(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    from pacsbridge.imports.pipeline import runner

    server = live_with_pacs(jobs={"backend": "sqlite"})
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = confirmed(server, client, auth, tmp_path / "cd")
    runner.run_pipeline(server.context, import_id)  # what the worker would do
    monitor_of(desk, server, url, import_id)
    expect(desk.locator("#final")).to_have_text("Elaborazione Ultimata")
    hint = desk.locator("#close-hint")
    expect(hint).to_contain_text("Importazione completata: lo studio è sul PACS")
    expect(hint).not_to_contain_text("in corso")
    expect(hint).not_to_contain_text("background")
    assert_in_view(desk, "#close-hint", "monitor completed: closing text bottom")
    for cell in desk.locator("#phases .phase-attempts").all():
        expect(cell).to_have_text("")  # finished and skipped phases: no attempts left shown
    events = desk.locator("#events")
    expect(events).to_contain_text("Importazione confermata")
    expect(events).to_contain_text("Fase completata – Invio al PACS")
    expect(events.locator(".event-outcome").first).to_have_text("riuscito")
    for code in ("import.confirmed", "import.created", "phase.completed", "files.deleted"):
        expect(events).not_to_contain_text(code)
    expect(events.locator(".event-outcome", has_text=re.compile(r"^(ok|error)$"))).to_have_count(0)
    screenshot(desk, "desk-05-monitor-completed")


def test_monitor_of_a_failed_import_says_call_support(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    from pacsbridge.imports.pipeline import runner

    server = live_with_pacs(jobs={"backend": "sqlite"})
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = confirmed(server, client, auth, tmp_path / "cd")
    runner.fail_import(server.context, import_id, PacsbridgeError("broken on purpose"))
    monitor_of(desk, server, url, import_id)
    expect(desk.locator("#final")).to_contain_text("Elaborazione fallita")
    hint = desk.locator("#close-hint")
    expect(hint).to_contain_text("Importazione fallita")
    expect(hint).to_contain_text("assistenza")
    expect(hint).not_to_contain_text("background")
    expect(hint).to_have_class(re.compile(r"alert-danger"))
    assert_in_view(desk, "#close-hint", "monitor failed: closing text bottom")
    expect(desk.locator("#events .event-outcome", has_text="errore")).not_to_have_count(0)


def test_monitor_of_a_cancelled_import_says_the_files_are_deleted(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs(jobs={"backend": "sqlite"})
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = confirmed(server, client, auth, tmp_path / "cd")
    assert client.post(f"/api/v1/imports/{import_id}/cancel", headers=auth).status_code == 200
    monitor_of(desk, server, url, import_id)
    expect(desk.locator("#final")).to_contain_text("annullata")
    hint = desk.locator("#close-hint")
    expect(hint).to_contain_text("Importazione annullata: i file temporanei sono stati eliminati")
    expect(hint).not_to_contain_text("background")
    assert_in_view(desk, "#close-hint", "monitor cancelled: closing text bottom")
    expect(desk.locator("#events")).to_contain_text("Importazione annullata")


def test_monitor_timeout_replaces_the_may_be_closed_text(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs(jobs={"backend": "sqlite"}, web={"monitor_timeout_seconds": 1})
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = confirmed(server, client, auth, tmp_path / "cd")
    monitor_of(desk, server, url, import_id)
    hint = desk.locator("#close-hint")
    expect(hint).to_contain_text("continuerà in background")
    expect(desk.locator("#timeout")).to_be_visible(timeout=10_000)
    expect(hint).to_contain_text("chiamare subito l'assistenza")
    expect(hint).not_to_contain_text("background")
    assert_in_view(desk, "#timeout", "monitor timeout box bottom")
    assert_in_view(desk, "#close-hint", "monitor timeout: closing text bottom")
    screenshot(desk, "desk-06-monitor-timeout")


def test_waiting_phases_keep_their_words_and_attempts_show_only_while_retrying(
    desk: Any, live: Any, own_pacs: DemoPacs, tmp_path: Path
) -> None:
    from pacsbridge.imports.pipeline import runner

    own_pacs.start()
    server = live(jobs={"backend": "sqlite"}, **pacs_settings(own_pacs))
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = confirmed(server, client, auth, tmp_path / "cd")
    own_pacs.stop()  # the PACS goes away: the send waits to retry, the later phases wait
    runner.run_pipeline(server.context, import_id)
    monitor_of(desk, server, url, import_id)
    send = desk.locator("tr[data-phase='send']")
    waiting = desk.locator("tr[data-phase='merge']")
    done = desk.locator("tr[data-phase='verify']")
    for moment in ("first rendering", "after live updates"):
        expect(send.locator(".phase-state")).to_contain_text("In attesa di riprovare"), moment
        expect(send.locator(".phase-attempts")).to_have_text(re.compile(r"^\d+$"))
        expect(waiting.locator(".phase-state")).to_have_text("Da Elaborare")
        expect(waiting.locator(".phase-attempts")).to_have_text("")
        expect(done.locator(".phase-state")).to_have_text("Studio Verificato")
        expect(done.locator(".phase-attempts")).to_have_text("")
        if moment == "first rendering":
            wait_for_polls(desk)
    assert_in_view(desk, "tr[data-phase='notify'] .phase-state", "monitor last phase bottom")
    screenshot(desk, "desk-07-monitor-retrying")


def test_expired_token_mid_flow_says_close_the_window_and_launch_again_from_the_ris(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    from pacsbridge.imports.models import Launch

    server = live_with_pacs()
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = analysed(server, client, auth, tmp_path / "cd")
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/confirm")
    expect(desk.locator("#confirm")).to_be_visible()
    with server.context.sessions.begin() as session:  # the launch expires while the page is open
        for row in session.query(Launch).all():
            row.expires_at = server.context.clock.now() - timedelta(seconds=1)
    desk.click("#confirm")
    error = desk.locator("#action-error")
    expect(error).to_contain_text("chiudere questa finestra e avviare di nuovo l'importazione")
    expect(error).to_contain_text("dal RIS")
    expect(error).not_to_contain_text("Il server ha rifiutato")
    assert_in_view(desk, "#action-error", "expired token message bottom")
    screenshot(desk, "desk-08-token-expired")


def test_pacs_unreachable_at_analysis_offers_check_again_which_runs_the_recheck(
    desk: Any, live: Any, own_pacs: DemoPacs, tmp_path: Path
) -> None:
    server = live(**pacs_settings(own_pacs))  # the PACS is not started yet: unreachable
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    client, auth, url = api_client(server)
    import_id = analysed(server, client, auth, tmp_path / "cd")
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/confirm")
    expect(desk.locator(".study-notice")).to_contain_text("PACS non raggiungibile")
    expect(desk.locator("#confirm")).to_have_count(0)
    assert_in_view(desk, "#recheck", "recheck button bottom")
    expect(desk.locator("#recheck")).to_have_text(re.compile("Riprova controllo"))
    own_pacs.start()
    held: list[Any] = []
    desk.route(re.compile(r".*/recheck$"), lambda route: held.append(route))
    desk.click("#recheck")
    expect(desk.locator("#action-status")).to_have_text("Controllo del PACS in corso...")
    expect(desk.locator("#recheck")).to_be_disabled()
    assert_in_view(desk, "#action-status", "recheck running text bottom")
    assert held, "the page did not call the recheck"
    held[0].continue_()
    expect(desk.locator("#confirm")).to_be_visible(timeout=20_000)
    expect(desk.locator("#recheck")).to_have_count(0)
    expect(desk.locator(".study-notice")).to_have_count(0)
    assert_in_view(desk, "#confirm")


def test_nothing_to_send_is_said_once(desk: Any, live: Any, tmp_path: Path) -> None:
    from pacsbridge.demo.samples import write_junk

    server = live()
    (tmp_path / "junk").mkdir()
    write_junk(tmp_path / "junk")
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.set_input_files("#folder-input", str(tmp_path / "junk"))
    expect(desk.locator("#summary-counts")).to_have_text(re.compile("^Niente da inviare"))
    expect(desk.locator("#summary-mode")).to_have_text("")
    expect(desk.locator("#summary")).not_to_contain_text("vengono inviati")
    expect(desk.locator("#send")).to_be_hidden()
    assert_in_view(desk, "#summary-counts")


def test_malformed_url_page_speaks_italian(desk: Any, live: Any) -> None:
    server = live()
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/abc/confirm")
    expect(desk.locator(".field-error")).to_contain_text("non è un numero intero")
    expect(desk.locator("main")).not_to_contain_text("Input should be")
    assert_in_view(desk, ".field-error")


def test_similar_name_is_a_warning_to_check_for_a_typing_error(
    desk: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    typo = SamplePatient(name="TESTA^TEST", patient_id="97119460", birth_date="19740101", sex="M")
    write_cd(tmp_path / "cd", [SampleStudy(patient=typo, series_count=1)])
    client, auth, url = api_client(server)
    import_id = analysed(server, client, auth, tmp_path / "cd")
    open_link(desk, server, url)
    desk.goto(f"{server.url}/imports/{import_id}/confirm")
    badges = desk.locator("#action-bar .verdict")
    expect(badges.first).to_have_text("NOME NON CORRISPONDE")
    similar = desk.locator("#action-bar .verdict", has_text="possibile errore di battitura")
    expect(similar).to_have_text("NOME SIMILE: possibile errore di battitura, verificare")
    expect(similar).to_have_class(re.compile(r"text-bg-warning"))
    expect(desk.locator(".verdict.text-bg-info")).to_have_count(0)
    assert_in_view(desk, "#action-bar .verdict >> nth=1", "similar name badge bottom")
    screenshot(desk, "desk-09-similar-name")


def test_upload_page_names_the_folder_says_no_birth_date_and_hides_rate_for_tiny_media(
    desk: Any, live: Any, tmp_path: Path
) -> None:
    server = live()
    nameless = SamplePatient(name="TEST^TEST", patient_id="97119460", birth_date="", sex="M")
    write_cd(tmp_path / "CD_ROSSI", [SampleStudy(patient=nameless, series_count=1)])
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.set_input_files("#folder-input", str(tmp_path / "CD_ROSSI"))
    expect(desk.locator("#chosen-name")).to_have_text("CD_ROSSI")
    assert_in_view(desk, "#chosen-name")
    patient = desk.locator("#dicomdir-patients .patient").first
    expect(patient).to_contain_text("data di nascita non presente")
    expect(patient).not_to_contain_text("—")
    held: list[Any] = []
    poll = re.compile(r".*/api/v1/imports/\d+$")
    desk.route(poll, lambda route: held.append(route))
    desk.click("#send")
    expect(desk.locator("#upload-bar")).to_have_attribute("aria-valuenow", "100")
    expect(desk.locator("#status")).to_contain_text("Attesa conferma dal server")
    expect(desk.locator("#upload-rate")).to_be_hidden()  # a few KB: no speed, no time left
    for route in held:
        route.continue_()
    desk.unroute(poll)
    desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))


def test_parent_folder_of_two_media_names_both_and_asks_which_to_send(
    desk: Any, live: Any, tmp_path: Path
) -> None:
    server = live()
    write_cd(tmp_path / "parent" / "CD1", [SampleStudy(patient=MATCHING, description="TC UNO")])
    write_cd(tmp_path / "parent" / "CD2", [SampleStudy(patient=MATCHING, description="RM DUE")])
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.set_input_files("#folder-input", str(tmp_path / "parent"))
    question = desk.locator("#media-question")
    expect(question).to_contain_text("2 supporti (CD1, CD2)")
    expect(desk.locator("#send")).to_be_hidden()  # nothing goes before the operator answers
    assert_in_view(desk, "#media-question")
    desk.check("#media-options input[value='CD2']")
    expect(desk.locator("#summary-warnings")).to_contain_text("Escluso: CD1 (altro supporto")
    expect(desk.locator("#dicomdir-patients")).to_contain_text("RM DUE")
    expect(desk.locator("#dicomdir-patients")).not_to_contain_text("TC UNO")
    expect(desk.locator("#summary-counts")).to_contain_text("9 file da inviare")
    assert_in_view(desk, "#send", "two media: send bottom")
    screenshot(desk, "desk-10-two-media")
    desk.click("#send")
    desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    expect(desk.locator(".study-description")).to_have_text("RM DUE")


def test_files_dropped_without_their_folders_are_sent_themselves_and_it_is_said(
    desk: Any, live: Any, tmp_path: Path
) -> None:
    server = live()
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=2)], junk=False)
    files = [p for p in sorted((tmp_path / "cd").rglob("*")) if p.is_file()]
    assert len({p.name for p in files}) < len(files)  # two series: the same names twice
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.click("#tab-drop")
    transfer = desk.evaluate_handle(
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
    desk.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    mode = desk.locator("#summary-mode")
    expect(mode).to_contain_text("I percorsi del DICOMDIR non corrispondono ai file")
    expect(desk.locator("#summary-counts")).to_contain_text("6 file da inviare")
    expect(desk.locator("#summary")).not_to_contain_text("Niente da inviare")
    expect(desk.locator("#summary")).not_to_contain_text("non sono presenti")
    assert_in_view(desk, "#summary-mode")
    desk.click("#send")
    desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    expect(desk.locator(".verification")).to_contain_text("PAZIENTE CORRISPONDE")
    expect(desk.locator(".study")).to_contain_text("6 immagini")


# --- 3. documents on the media --------------------------------------------------------------


def test_documents_on_the_media_are_offered_unticked_with_a_preview_and_reach_the_pacs(
    desk: Any, live_with_pacs: Any, demo_pacs: DemoPacs, tmp_path: Path
) -> None:
    from pydicom.uid import EncapsulatedPDFStorage

    from imports.test_documents import REPORT, medium
    from pacsbridge.dicomnet.find import find_instance_uids
    from pacsbridge.dicomnet.peers import LocalAE

    server = live_with_pacs()
    study = SampleStudy(patient=MATCHING, series_count=1, instances_per_series=2)
    medium(tmp_path / "cd", study)
    client, _auth, url = api_client(server)
    open_link(desk, server, url)
    desk.set_input_files("#folder-input", str(tmp_path / "cd"))
    expect(desk.locator("#summary-counts")).to_contain_text("6 file da inviare")  # 1 + 2 + 3
    expect(desk.locator("#summary-warnings")).to_contain_text("Inviati anche 3 documenti")
    desk.click("#send")
    desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    import_id = int(desk.url.split("/")[-2])
    offered = desk.locator("#documents .document")
    expect(offered).to_have_count(3)  # the viewer's own HELP.PDF is not offered
    expect(desk.locator("#documents")).not_to_contain_text("HELP.PDF")
    expect(desk.locator(".document-select")).to_have_count(2)
    for box in desk.locator(".document-select").all():
        expect(box).not_to_be_checked()  # none is ticked by default
    broken = desk.locator("#documents .document", has_text="LOGO.PNG")
    expect(broken.locator(".document-problem")).to_have_text(
        "Documento illeggibile o danneggiato: non importato"
    )
    scan = desk.locator("#documents .document[data-kind='image']", has_text="PAGE1.PNG")
    preview = scan.locator("img")
    expect(preview).to_have_js_property("complete", True)
    assert preview.evaluate("img => img.naturalWidth") == 40  # the page itself, made small
    report = desk.locator("#documents .document", has_text="REFERTO.PDF")
    href = report.locator("a").get_attribute("href")
    answer = client.get(href, headers={"Cookie": _cookie(desk)})
    assert answer.status_code == 200 and answer.content == REPORT
    assert answer.headers["content-type"] == "application/pdf"
    assert "REFERTO" not in answer.headers["content-disposition"]
    report.locator(".document-select").check()
    screenshot(desk, "desk-11-documents")
    assert_in_view(desk, "#confirm", "documents ticked: #confirm bottom", scrolled=True)
    desk.click("#confirm")
    desk.wait_for_url(re.compile(r"/imports/\d+/monitor$"))
    expect(desk.locator("#final")).to_have_text("Elaborazione Ultimata", timeout=30_000)
    expect(desk.locator("#events")).to_contain_text("Documenti del supporto aggiunti allo studio")
    checker = LocalAE(ae_title="CHECKER", connection_timeout=3, acse_timeout=5)
    held = find_instance_uids(checker, demo_pacs.peer, study.study_instance_uid)
    assert len(held) == 3  # two images and the report
    with server.context.sessions() as session:
        from pacsbridge.imports.models import ImportInstance

        classes = [
            r.sop_class_uid
            for r in session.query(ImportInstance).filter_by(import_id=import_id, state="stored")
        ]
    assert classes.count(EncapsulatedPDFStorage) == 1


def _cookie(page: Any) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())


# --- the manual's flow in English -----------------------------------------------------------


def test_the_manual_flow_passes_end_to_end_in_english_with_every_step_in_view(
    browser: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    context = browser.new_context(locale="en-GB", viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(15_000)
    desk = context.new_page()
    errors: list[str] = []
    desk.on("pageerror", lambda error: errors.append(str(error)))
    try:
        server = live_with_pacs()
        write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=2)])
        _client, _auth, url = api_client(server)
        open_link(desk, server, url)
        expect(desk.locator("#page-title")).to_have_text("IMPORT external DICOM study")
        desk.set_input_files("#folder-input", str(tmp_path / "cd"))
        expect(desk.locator("#chosen")).to_contain_text("Chosen: cd")
        expect(desk.locator("#summary-warnings")).to_contain_text("2 documents (PDF, pictures)")
        assert_in_view(desk, "#send")
        desk.click("#send")
        desk.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
        expect(desk.locator("#action-bar .verdict").first).to_have_text("PATIENT MATCHES")
        expect(desk.locator("#documents-title")).to_contain_text("Documents on the media")
        assert_in_view(desk, "#confirm")
        expect(desk.locator("#confirm")).to_contain_text("CONFIRM IMPORT")
        desk.click("#confirm")
        desk.wait_for_url(re.compile(r"/imports/\d+/monitor$"))
        expect(desk.locator("#final")).to_have_text("Processing completed", timeout=30_000)
        expect(desk.locator("#close-hint")).to_contain_text("Import completed")
        send = desk.locator("tr[data-phase='send'] .phase-state")
        expect(send).to_have_text("Study archived (6)")  # stored in Italian, said in English
        expect(desk.locator("#events")).to_contain_text("Import confirmed")
        expect(desk.locator("#events .event-outcome").first).to_have_text("done")
        assert_in_view(desk, "#final")
        screenshot(desk, "desk-12-english-monitor")
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"
