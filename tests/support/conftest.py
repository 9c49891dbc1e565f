"""Fixtures of the support console tests: staff accounts, signed-in clients, imports.

A console client signs in through the real sign-in page (``/support/accedi``: the form's CSRF
field from the page, the staff cookie from the answer), exactly as a browser does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import LAUNCH_BODY, RIS_KEY, bearer, deep_merge
from imports.helpers import zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.staff import accounts

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
PATIENT = SamplePatient(name="TEST^TEST", patient_id="EXT-77", birth_date="19740101", sex="M")


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/support/accedi")
    assert page.status_code == 200, page.text
    return client.post(
        "/support/accedi",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture
def console(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    """``console(role, username=..., client=None, **settings)``: a client signed in as a new
    staff member of ``role`` (on ``client``'s server, or a new one)."""

    def make(
        role: str = "support",
        username: str = "",
        client: TestClient | None = None,
        **overrides: Any,
    ) -> TestClient:
        base = client or make_client(**overrides)
        ctx = base.app.state.context
        name = username or f"{role}.user"
        accounts.add(ctx, name, PASSWORD, role, display_name=name.title())
        browser = TestClient(base.app, raise_server_exceptions=False)
        answer = sign_in(browser, name)
        assert answer.status_code == 303, answer.text
        return browser

    return make


def csrf(client: TestClient, page: str) -> str:
    """The form token a console page carries."""
    answer = client.get(page)
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def launch_for(client: TestClient, **changes: Any) -> str:
    """A RIS launch with ``changes`` merged into the test body; its token."""
    body = deep_merge(LAUNCH_BODY, changes)
    answer = client.post("/api/v1/launch", json=body, headers=bearer(RIS_KEY))
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def new_import(client: TestClient, token: str) -> int:
    answer = client.post("/api/v1/imports", headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def analysed_import(client: TestClient, token: str, folder: Path, patient=PATIENT) -> int:  # noqa: ANN001
    """An import whose media (one small study of ``patient``) was uploaded and analysed."""
    write_loose(
        folder, [SampleStudy(patient=patient, series_count=1, instances_per_series=2)], junk=False
    )
    import_id = new_import(client, token)
    answer = client.put(
        f"/api/v1/imports/{import_id}/archive", content=zip_folder(folder), headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text
    return import_id
