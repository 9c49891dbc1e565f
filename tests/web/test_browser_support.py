"""The support console in Chromium: sign in, find an import by its support id, read its log,
retry its failed phase after the confirmation page, and see it complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import bearer
from pacsbridge.staff import accounts
from support.conftest import PASSWORD, analysed_import, launch_for

from .conftest import screenshot

pytestmark = pytest.mark.browser


def test_support_signs_in_finds_the_import_by_support_id_reads_its_log_and_retries_it(
    page: Any, live: Any, pynetdicom_pacs: Any, relay: Any, tmp_path: Path
) -> None:
    peer = pynetdicom_pacs.peer
    relay.up(peer.port)
    server = live(
        pacs={"ae_title": peer.ae_title, "host": relay.host, "port": relay.port},
        jobs={"backend": "immediate", "attempts": 1},
    )
    accounts.add(server.context, "m.rossi", PASSWORD, "support", display_name="Mario Rossi")
    with httpx.Client(base_url=server.url, timeout=60) as api:
        token = launch_for(api)
        import_id = analysed_import(api, token, tmp_path / "usb")
        relay.down()  # the PACS goes away after the duplicate check: the send fails
        confirmed = api.post(f"/api/v1/imports/{import_id}/confirm", headers=bearer(token), json={})
        assert confirmed.status_code == 202, confirmed.text
        assert confirmed.json()["state"] == "failed"

    page.goto(f"{server.url}/support/")
    expect(page).to_have_url(f"{server.url}/support/accedi?next=/support/importazioni")
    page.get_by_label("Nome utente").fill("m.rossi")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Accedi").click()
    expect(page.locator("header")).to_contain_text("Mario Rossi")

    page.get_by_label("Id per assistenza").fill(str(import_id))
    page.get_by_role("button", name="Cerca").click()
    expect(page.locator("#imports tbody tr")).to_have_count(1)
    screenshot(page, "support-00-search")
    page.get_by_role("link", name=str(import_id), exact=True).click()
    expect(page.locator("#support-id")).to_have_text(str(import_id))
    expect(page.locator("tr[data-phase='send']")).to_have_attribute("data-state", "failed")
    page.get_by_role("link", name="Log dell'importazione").click()
    failed = page.locator("#events tr[data-kind='phase.failed']")
    expect(failed).to_be_in_viewport()
    screenshot(page, "support-01-import-log")

    relay.up(peer.port)  # the PACS is back
    page.get_by_role("link", name="Riprova fase fallita").click()
    expect(page.locator("#question")).to_contain_text(f"importazione {import_id}")
    screenshot(page, "support-02-confirm-retry")
    page.get_by_role("button", name="Sì, procedi").click()

    expect(page.locator("#notice")).to_have_text("La fase fallita è stata riavviata.")
    expect(page.locator("#import-state")).to_have_attribute("data-state", "completed")
    expect(page.locator("#events tr[data-kind='support.retried'] .event-actor")).to_have_text(
        "m.rossi"
    )
    screenshot(page, "support-03-retried")
