"""The monitor in Chromium set to English: what its JavaScript writes from the progress and
events JSON is English too, for a phase waiting to retry and for a completed import with its
patient box and log; no Italian catalogue text anywhere on the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import LAUNCH_BODY, RIS_KEY, bearer
from imports.helpers import zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.imports import analysis
from pacsbridge.imports.pipeline.runner import run_pipeline

from .conftest import browser_tab
from .test_page_languages import italian_only, without_data

pytestmark = pytest.mark.browser

MATCHING = SamplePatient(name="TEST^TEST", birth_date="19740101", sex="M")


@pytest.fixture
def english(browser: Any) -> Iterator[Any]:
    """A browser context whose Accept-Language is English; JavaScript errors fail the test."""
    yield from browser_tab(browser, "en-GB")


def _confirmed(server: Any, folder: Path, relay: Any = None) -> tuple[str, int]:
    """Launched, uploaded, analysed against the PACS, confirmed: the launch link and the id."""
    write_cd(folder, [SampleStudy(patient=MATCHING, series_count=1)])
    with httpx.Client(base_url=server.url) as api:
        launched = api.post("/api/v1/launch", json=LAUNCH_BODY, headers=bearer(RIS_KEY)).json()
        auth = bearer(launched["token"])
        import_id = api.post("/api/v1/imports", headers=auth).json()["id"]
        api.put(f"/api/v1/imports/{import_id}/archive", content=zip_folder(folder), headers=auth)
        analysis.analyse(server.context, import_id)  # what the worker would do
        if relay is not None:
            relay.down()
        assert api.post(f"/api/v1/imports/{import_id}/confirm", headers=auth).status_code == 202
    return launched["url"], import_id


def _monitor(page: Any, server: Any, url: str, import_id: int) -> None:
    page.goto(url)
    page.wait_for_url(f"{server.url}/imports")
    page.goto(f"{server.url}/imports/{import_id}/monitor")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _italian_on(page: Any) -> list[str]:
    shown = without_data(page.locator("body").inner_text())
    return sorted(piece for piece in italian_only() if piece in shown)


def test_english_monitor_in_chromium_says_a_retry_in_english(
    english: Any, live: Any, demo_pacs: Any, relay: Any, tmp_path: Path
) -> None:
    relay.up(demo_pacs.port)
    pacs = {"ae_title": demo_pacs.ae_title, "host": relay.host, "port": relay.port}
    server = live(pacs=pacs, jobs={"backend": "sqlite", "attempts": 3})
    url, import_id = _confirmed(server, tmp_path / "cd", relay)
    run_pipeline(server.context, import_id)  # the PACS is gone: the send waits to retry

    _monitor(english, server, url, import_id)
    send = english.locator("tr[data-phase='send'] .phase-state")
    expect(send).to_contain_text("Waiting to retry (")
    expect(send).to_contain_text("unreachable")
    expect(english.locator("#events")).to_contain_text("Phase to be retried")
    english.wait_for_timeout(2500)  # one poll of the JavaScript has rewritten the cells
    expect(send).to_contain_text("Waiting to retry (")
    assert _italian_on(english) == []


def test_english_monitor_in_chromium_says_a_completed_import_in_english(
    english: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    server = live_with_pacs()
    url, import_id = _confirmed(server, tmp_path / "cd")

    _monitor(english, server, url, import_id)
    expect(english.locator("#final")).to_have_text("Processing completed")
    expect(english.locator("tr[data-phase='send'] .phase-state")).to_contain_text(
        "Study archived ("
    )
    expect(english.locator("tr[data-phase='verify'] .phase-state")).to_have_text("Study verified")
    expect(english.locator("#events")).to_contain_text("Import completed")
    english.wait_for_timeout(2500)
    assert _italian_on(english) == []
