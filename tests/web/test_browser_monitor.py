"""The monitor page in Chromium: "Timeout" with the support id when nothing moves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import LAUNCH_BODY, RIS_KEY, bearer
from imports.helpers import zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.imports import analysis

from .conftest import screenshot

pytestmark = pytest.mark.browser

MATCHING = SamplePatient(name="TEST^TEST", birth_date="19740101", sex="M")


def test_monitor_shows_timeout_when_the_pipeline_does_not_move(
    page: Any, live_with_pacs: Any, tmp_path: Path
) -> None:
    # Jobs go to a SQLite queue that no worker consumes: the confirmed import stays put.
    server = live_with_pacs(jobs={"backend": "sqlite"}, web={"monitor_timeout_seconds": 1})
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=1)])
    with httpx.Client(base_url=server.url) as api:
        launched = api.post("/api/v1/launch", json=LAUNCH_BODY, headers=bearer(RIS_KEY)).json()
        auth = bearer(launched["token"])
        import_id = api.post("/api/v1/imports", headers=auth).json()["id"]
        archive = zip_folder(tmp_path / "cd")
        api.put(f"/api/v1/imports/{import_id}/archive", content=archive, headers=auth)
        analysis.analyse(server.context, import_id)  # what the worker would do
        assert api.post(f"/api/v1/imports/{import_id}/confirm", headers=auth).status_code == 202
    page.goto(launched["url"])
    page.wait_for_url(f"{server.url}/imports")
    page.goto(f"{server.url}/imports/{import_id}/monitor")
    expect(page.locator("tr[data-phase='verify'] .phase-state")).to_have_text("Da Elaborare")
    expect(page.locator("#final")).to_have_text("Elaborazione in corso")
    timeout = page.locator("#timeout")
    expect(timeout).to_be_visible(timeout=10_000)
    expect(timeout).to_contain_text(re.compile(rf"Timeout.*assistenza.*{import_id}"))
    expect(page.locator("#events")).to_contain_text("Importazione confermata")
    screenshot(page, "10-monitor-timeout")
