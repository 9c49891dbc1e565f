"""A launch link for another patient never switches the browser's session silently (Chromium).

The RIS link is clicked from a page of another site, as in the hospital: the browser withholds
the SameSite=Strict session cookie on that navigation, so the server must look again from a
same-site page before it decides. The question page names both patients, in Italian.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import LAUNCH_BODY

from .conftest import launch_url, screenshot

pytestmark = pytest.mark.browser

OTHER = copy.deepcopy(LAUNCH_BODY)
OTHER["patient"].update(id="CRRSMN72", family_name="CERRI", given_name="SIMONE")
OTHER["order"]["number"] = "ORD-2"


def click_from_another_site(page: Any, url: str) -> None:
    """Follow ``url`` from a page with an opaque origin: a cross-site navigation."""
    page.goto("about:blank")
    page.set_content(f'<a id="ris-link" href="{url}">RIS</a>')
    page.click("#ris-link")


def open_first_patient(page: Any, server: Any) -> None:
    click_from_another_site(page, launch_url(server))
    page.wait_for_url(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")


def test_link_for_another_patient_names_both_and_stays_when_asked(page: Any, live: Any) -> None:
    server = live()
    open_first_patient(page, server)
    click_from_another_site(page, launch_url(server, OTHER))
    page.wait_for_url(f"{server.url}/imports/session")  # the token left the address bar
    expect(page.locator("#page-title")).to_have_text("È aperto un altro paziente")
    expect(page.locator("#current-patient")).to_contain_text("TEST TEST")
    expect(page.locator("#new-patient")).to_contain_text("CERRI SIMONE")
    expect(page.locator("#switch-question")).to_contain_text("Scegliere su quale paziente")
    screenshot(page, "09-session-switch-question")
    page.click("#stay")
    page.wait_for_url(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
    page.reload()
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")


def test_link_for_another_patient_switches_only_when_chosen(page: Any, live: Any) -> None:
    server = live()
    open_first_patient(page, server)
    page.goto(launch_url(server, OTHER))  # typed or pasted: the cookie is visible at once
    page.wait_for_url(f"{server.url}/imports/session")
    expect(page.locator("#new-patient")).to_contain_text("CERRI SIMONE")
    page.click("#switch")
    page.wait_for_url(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("CERRI SIMONE")


def test_new_link_for_the_same_patient_opens_without_asking(page: Any, live: Any) -> None:
    server = live()
    open_first_patient(page, server)
    again = copy.deepcopy(LAUNCH_BODY)
    again["order"]["number"] = "ORD-9"
    click_from_another_site(page, launch_url(server, again))
    page.wait_for_url(re.compile(rf"{re.escape(server.url)}/imports$"))
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
    expect(page.get_by_text("ORD-9")).to_be_visible()


def test_forged_switch_without_the_csrf_token_is_refused(page: Any, live: Any) -> None:
    server = live()
    open_first_patient(page, server)
    click_from_another_site(page, launch_url(server, OTHER))
    page.wait_for_url(f"{server.url}/imports/session")
    forged = page.request.post(f"{server.url}/imports/session", form={"choice": "switch"})
    assert forged.status == 403
    page.goto(f"{server.url}/imports")
    expect(page.locator("#ris-patient-name")).to_contain_text("TEST TEST")
