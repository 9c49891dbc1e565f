"""A URL-shaped Series Instance UID in headless Chromium: the page never turns it into a request.

The attack: a CD whose Series Instance UID reads ``../../../imports/start?token=<another
launch's token>&``. The confirmation page pasted it into a thumbnail's address, the browser
resolved the dots and loaded the launch link as an image, and the session cookie switched to
the other launch's patient. Pages now address a series by the import id and a key of ours.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect
from pydicom import dcmread

from conftest import LAUNCH_BODY
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd

from .conftest import launch_url, screenshot

pytestmark = pytest.mark.browser

MATCHING = SamplePatient(name="TEST^TEST", patient_id="97119460", birth_date="19740101", sex="M")


def other_launch_token(server: Any) -> str:
    """A launch for another patient, as the RIS would make it; its token, from the link."""
    body = copy.deepcopy(LAUNCH_BODY)
    body["patient"].update(id="VICTIM77", family_name="ALTRO", given_name="PAZIENTE")
    return parse_qs(urlsplit(launch_url(server, body)).query)["token"][0]


def cd_with_series_uid(root: Path, series_uid: str) -> None:
    """A real CD with two series; every image of the second one gets ``series_uid``."""
    write_cd(root, [SampleStudy(patient=MATCHING, series_count=2, instances_per_series=2)])
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name.startswith("SE"))
    second = sorted({str(dcmread(p).SeriesInstanceUID) for p in images})[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the bad UI value, and writes it
        for path in images:
            ds = dcmread(path)
            if ds.SeriesInstanceUID == second:
                ds.SeriesInstanceUID = series_uid
                ds.save_as(path)


def test_url_shaped_series_uid_is_never_requested_and_the_patient_stays(
    page: Any, live: Any, tmp_path: Path
) -> None:
    server = live()
    token = other_launch_token(server)
    hostile = f"../../../imports/start?token={token}&x=//evil.example/"
    cd_with_series_uid(tmp_path / "cd", hostile)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(launch_url(server))
    page.wait_for_url(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
    page.set_input_files("#folder-input", str(tmp_path / "cd"))
    page.click("#send")
    page.wait_for_url(re.compile(r"/imports/\d+/confirm$"))
    import_id = int(page.url.split("/")[-2])
    thumbs = page.locator("img.thumb")
    expect(thumbs).to_have_count(1)  # the hostile series is not offered at all
    page.wait_for_load_state("networkidle")
    for index in range(thumbs.count()):
        expect(thumbs.nth(index)).to_have_js_property("complete", True)
    expect(page.locator("#problems")).to_contain_text("UID non valido")
    screenshot(page, "10-hostile-series-uid")

    after_upload = requested[[i for i, u in enumerate(requested) if "/confirm" in u][0] :]
    assert not [u for u in after_upload if token in u or "evil" in u or "/start" in u]
    src = thumbs.first.get_attribute("src") or ""
    assert re.fullmatch(rf"/imports/{import_id}/thumbnails/[0-9a-f]{{16}}\.png", src), src
    page.goto(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
    expect(page.locator("#ris-patient-name")).not_to_contain_text("ALTRO")
