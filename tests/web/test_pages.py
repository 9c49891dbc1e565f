"""The operator pages through the ASGI app (no browser): cookie, errors, escaping, CSRF, i18n."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import LAUNCH_BODY, bearer, launch
from imports.helpers import upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.web import csrf
from pacsbridge.web.pages.i18n import negotiate

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")


def open_pages(client: TestClient, body: dict[str, Any] | None = None) -> str:
    """Launch and follow the link like the browser: the client keeps the cookie."""
    token = launch(client, body)
    answer = client.get(f"/imports/start?token={token}", follow_redirects=False)
    assert answer.status_code == 200, answer.text
    return token


def analysed(client: TestClient, token: str, folder: Path, patient: SamplePatient) -> dict:
    write_cd(folder, [SampleStudy(patient=patient, series_count=1, description="TC <i>TORACE</i>")])
    return upload(client, token, zip_folder(folder))


def test_start_moves_the_token_into_a_strict_httponly_cookie(make_client: Any) -> None:
    client = make_client()
    token = launch(client)
    answer = client.get(f"/imports/start?token={token}", follow_redirects=False)
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert f"pacsbridge_token={token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests
    assert '<meta http-equiv="refresh" content="0;url=/imports">' in answer.text
    assert token not in answer.text
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    page = client.get("/imports")
    assert page.status_code == 200
    assert "IOTELU1234" in page.text and token not in page.text


def test_cookie_is_secure_behind_https(make_client: Any) -> None:
    client = make_client(web={"public_url": "https://pacsbridge.example"})
    token = launch(client)
    answer = client.get(f"/imports/start?token={token}", follow_redirects=False)
    assert "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize("path", ["/imports/start?token=nope", "/imports/start", "/imports"])
def test_unknown_token_shows_the_token_page(make_client: Any, path: str) -> None:
    answer = make_client().get(path)
    assert answer.status_code == 401
    assert "Token Not Found or Expired" in answer.text
    assert "Azione consigliata" in answer.text and "sistema RIS" in answer.text
    assert "Traceback" not in answer.text


def test_expired_token_shows_the_token_page(make_client: Any, clock: Any) -> None:
    client = make_client()
    token = launch(client)
    clock.advance(hours=9)
    answer = client.get(f"/imports/start?token={token}")
    assert answer.status_code == 401
    assert "Token Not Found or Expired" in answer.text


def test_unexpected_error_page_has_no_traceback(make_client: Any) -> None:
    client = make_client()
    open_pages(client)
    answer = client.get("/imports/999/confirm")
    assert answer.status_code == 404
    assert "Elemento non trovato" in answer.text and "Traceback" not in answer.text


def test_dicom_and_ris_values_are_escaped(make_client: Any, tmp_path: Path) -> None:
    client = make_client()
    body = copy.deepcopy(LAUNCH_BODY)
    body["patient"]["given_name"] = "<svg/onload/alert(2)>"  # no '=': a PN cannot hold it
    token = open_pages(client, body)
    hostile = SamplePatient(name="<script>alert(1)</script>", birth_date="19740101", sex="M")
    document = analysed(client, token, tmp_path / "cd", hostile)
    page = client.get(f"/imports/{document['id']}/confirm").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "TC &lt;i&gt;TORACE&lt;/i&gt;" in page
    assert "&lt;svg/onload/alert(2)&gt;" in page
    assert "<script>alert" not in page and "<svg" not in page and "<i>TORACE" not in page
    assert "<svg" not in client.get("/imports").text


def test_state_change_with_the_cookie_needs_the_csrf_header(make_client: Any) -> None:
    client = make_client()
    token = open_pages(client)
    refused = client.post("/api/v1/imports")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/v1/imports", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    accepted = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf.token_for(token)})
    assert accepted.status_code == 201
    page = client.get("/imports").text
    assert csrf.token_for(token) in page  # handed to the page's JavaScript


def test_english_from_the_browser_language(make_client: Any) -> None:
    client = make_client()
    open_pages(client)
    english = client.get("/imports", headers={"Accept-Language": "en-GB,en;q=0.9,it;q=0.5"})
    assert "LOAD STUDY FROM CD or DIRECTORY" in english.text and "Select folder" in english.text
    assert '<html lang="en">' in english.text
    italian = client.get("/imports", headers={"Accept-Language": "it-IT,it;q=0.9,en;q=0.8"})
    assert (
        "CARICO STUDIO DA CD o DIRECTORY" in italian.text and "Seleziona Cartella" in italian.text
    )
    assert "Seleziona Cartella" in client.get("/imports").text  # Italian by default
    error = client.get("/imports/start?token=x", headers={"Accept-Language": "en"})
    assert "Close the import window" in error.text


def test_english_from_the_setting(make_client: Any) -> None:
    client = make_client(web={"language": "en"})
    open_pages(client)
    assert "Select folder" in client.get("/imports").text
    assert "Seleziona Cartella" in client.get("/imports", headers={"Accept-Language": "it"}).text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "it"),
        ("", "it"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.5,it;q=0.6", "it"),
        ("de", "it"),
        ("en;q=0.2,it;q=0.1", "en"),
        ("en;q=nonsense,it", "it"),
    ],
)
def test_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate(header, "it") == expected


def test_confirmation_page_without_anything_to_import(make_client: Any, tmp_path: Path) -> None:
    client = make_client()  # the test PACS is unreachable: the duplicate check cannot be done
    token = open_pages(client)
    document = analysed(client, token, tmp_path / "cd", MATCHING)
    page = client.get(f"/imports/{document['id']}/confirm").text
    assert "CONFERMA IMPORT STUDI" in page and "PAZIENTE CORRISPONDE" in page
    assert 'id="confirm"' not in page and "ANNULLA IMPORTAZIONE" in page
    assert "PACS non raggiungibile" in page
    assert page.count('class="figure-img rounded bg-black thumb"') == 1


def test_history_shows_badges_and_open_links(make_client: Any, tmp_path: Path) -> None:
    client = make_client()
    token = open_pages(client)
    assert "Importazioni Precedenti" not in client.get("/imports").text  # no attempt yet
    created = client.post("/api/v1/imports", headers=bearer(token)).json()
    document = analysed(client, token, tmp_path / "cd", MATCHING)
    page = client.get("/imports").text
    assert "Importazioni Precedenti (con Log)" in page
    rows = {int(m[0]): m[1] for m in re.findall(r'data-import-id="(\d+)">(.*?)</tr>', page, re.S)}
    assert "Richiesta creata" in rows[created["id"]] and "Apri" not in rows[created["id"]]
    assert "In attesa processo" in rows[document["id"]]
    assert f'/imports/{document["id"]}/monitor" target="_blank"' in rows[document["id"]]


def test_thumbnails_are_scoped_and_fall_back_to_a_placeholder(
    make_client: Any, tmp_path: Path
) -> None:
    from pacsbridge.media.thumbnails import placeholder_png

    client = make_client()
    token = open_pages(client)
    document = analysed(client, token, tmp_path / "cd", MATCHING)
    from pacsbridge.web.pages.view import series_key

    study = document["patients"][0]["studies"][0]
    series = series_key(study["study_instance_uid"], study["series"][0]["series_instance_uid"])
    page = client.get(f"/imports/{document['id']}/confirm").text
    assert f"/imports/{document['id']}/thumbnails/{series}.png" in page  # our key, not the UID
    image = client.get(f"/imports/{document['id']}/thumbnails/{series}.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "no-store"  # pixels are patient data
    assert image.content.startswith(b"\x89PNG") and image.content != placeholder_png()
    unknown = client.get(f"/imports/{document['id']}/thumbnails/{'0' * 16}.png")
    assert unknown.content == placeholder_png()
    raw_uid = study["series"][0]["series_instance_uid"]  # a UID is no longer an address
    assert client.get(f"/imports/{document['id']}/thumbnails/{raw_uid}.png").status_code == 422
    other = make_client()
    assert other.get(f"/imports/{document['id']}/thumbnails/{series}.png").status_code == 401


def test_cancelled_import_pages(make_client: Any, tmp_path: Path) -> None:
    client = make_client()
    token = open_pages(client)
    document = analysed(client, token, tmp_path / "cd", MATCHING)
    import_id = document["id"]
    monitor = client.get(f"/imports/{import_id}/monitor", follow_redirects=False)
    assert monitor.status_code == 303 and monitor.headers["location"].endswith("/confirm")
    client.post(f"/api/v1/imports/{import_id}/cancel", headers=bearer(token))
    confirm = client.get(f"/imports/{import_id}/confirm", follow_redirects=False)
    assert confirm.headers["location"] == f"/imports/{import_id}/cancelled"
    page = client.get(f"/imports/{import_id}/cancelled").text
    assert "Importazione annullata" in page and "eliminati dal server" in page
    monitor = client.get(f"/imports/{import_id}/monitor").text
    assert "Importazione annullata dall&#39;operatore" in monitor
    assert "import.cancelled" in monitor and "Id per assistenza" in monitor
