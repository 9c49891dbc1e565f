"""The monitor in one language only: no Italian catalogue text on the English pages (and the
key texts in Italian on the Italian ones), for a failed phase, a retrying phase and a completed
import with its patient box and log.

What the operator reads is the server-rendered page plus what its JavaScript writes from the
progress and events JSON; both are fetched here in the page's language (Accept-Language).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from conftest import LAUNCH_BODY, bearer, launch, pacs_settings
from imports.helpers import drain, upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.messages import LOCALE_DIR

PATIENT = SamplePatient(name="TEST^TEST", patient_id="EXT-9", birth_date="19740101", sex="M")
#: Literal fragments shorter than this may be ordinary words of the other language or data.
SHORTEST = 8


def italian_only() -> set[str]:
    """Fragments of every Italian msgstr that differs from its English msgid (placeholders cut)."""
    with open(LOCALE_DIR / "it" / "LC_MESSAGES" / "pacsbridge.po", "rb") as handle:
        entries = [m for m in read_po(handle) if m.id and m.string]
    found: set[str] = set()
    for entry in entries:
        english = entry.id if isinstance(entry.id, str) else entry.id[0]
        italian = entry.string if isinstance(entry.string, str) else entry.string[0]
        if italian == english:
            continue
        for piece in re.split(r"\{[^}]*\}|%\([^)]*\)[sd]", italian):
            if len(piece.strip()) >= SHORTEST and piece.strip() not in english:
                found.add(piece.strip())
    return found


def _words(client: TestClient, token: str, import_id: int, lang: str) -> str:
    """What the operator can read: the page's text and the JSON its JavaScript shows."""
    headers = {"Accept-Language": lang}
    page = client.get(f"/imports/{import_id}/monitor", headers=headers)
    assert page.status_code == 200, page.text
    api = {**headers, **bearer(token)}
    progress = client.get(f"/api/v1/imports/{import_id}/progress", headers=api).json()
    events = client.get(f"/api/v1/imports/{import_id}/events", headers=api).json()
    shown = [p["message"] for p in progress["phases"]] + [progress["final"]["message"]]
    shown += [e["message"] for e in events["events"]]
    shown.append((progress.get("error") or {}).get("message", ""))
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
    return " ".join([re.sub(r"\s+", " ", text), *shown, json.dumps(progress, ensure_ascii=False)])


def _confirmed(
    client: TestClient, tmp_path: Path, after_analysis: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Analysed against the PACS, then confirmed (after ``after_analysis(import_id)``, if any:
    the relay to the PACS goes down, a file is cut)."""
    token = launch(client)
    client.get(f"/imports/start?token={token}")  # the pages' cookie, as the browser gets it
    write_loose(tmp_path / "usb", [SampleStudy(patient=PATIENT, series_count=1)])
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    drain(client)
    if after_analysis is not None:
        after_analysis(document["id"])
    confirm = client.post(
        f"/api/v1/imports/{document['id']}/confirm",
        headers=bearer(token),
        json={"identity_acknowledged": True},
    )
    assert confirm.status_code == 202, confirm.text
    drain(client)
    return token, document["id"]


def without_data(words: str) -> str:
    """The page's words without the RIS's values (the operator "Operatore Uno" is data, not
    the page speaking Italian)."""
    for value in (LAUNCH_BODY["operator"]["name"], LAUNCH_BODY["patient"]["family_name"]):
        words = words.replace(value, " ")
    return words


def _no_italian(words: str) -> list[str]:
    words = without_data(words)
    return sorted(piece for piece in italian_only() if piece in words)


@pytest.mark.parametrize(
    ("attempts", "english", "italian"),
    [
        (1, ["Error: ", "unreachable", "Processing failed"], ["Errore: ", "non raggiungibile"]),
        (3, ["Waiting to retry (", "attempts left", "unreachable"], ["In attesa di riprovare"]),
    ],
    ids=["failed", "retrying"],
)
def test_a_failed_or_retrying_phase_speaks_only_the_page_language(
    make_client: Any,
    pynetdicom_pacs: Any,
    relay: Any,
    tmp_path: Path,
    attempts: int,
    english: list[str],
    italian: list[str],
) -> None:
    relay.up(pynetdicom_pacs.peer.port)
    pacs = {"ae_title": pynetdicom_pacs.peer.ae_title, "host": relay.host, "port": relay.port}
    client = make_client(pacs=pacs, jobs={"backend": "sqlite", "attempts": attempts})
    token, import_id = _confirmed(client, tmp_path, lambda _: relay.down())  # gone for the send

    in_english = _words(client, token, import_id, "en")
    assert _no_italian(in_english) == []
    assert all(words in in_english for words in english), in_english
    in_italian = _words(client, token, import_id, "it")
    assert all(words in in_italian for words in italian), in_italian
    assert not any(words in in_italian for words in english if words != "unreachable")


def test_a_completed_import_with_patient_box_and_log_speaks_only_the_page_language(
    make_client: Any, pynetdicom_pacs: Any, tmp_path: Path
) -> None:
    client = make_client(**pacs_settings(pynetdicom_pacs), jobs={"backend": "sqlite"})
    token, import_id = _confirmed(client, tmp_path)

    in_english = _words(client, token, import_id, "en")
    assert _no_italian(in_english) == []
    for words in ["Study archived (", "Processing completed", "Import completed", "Study verified"]:
        assert words in in_english, words
    in_italian = _words(client, token, import_id, "it")
    for words in ["Studio Archiviato (", "Elaborazione Ultimata", "Studio Verificato"]:
        assert words in in_italian, words
    assert "Study archived" not in in_italian


def test_a_failed_verification_names_each_file_problem_in_the_page_language(
    make_client: Any, pynetdicom_pacs: Any, tmp_path: Path
) -> None:
    from pacsbridge.imports import workspace

    client = make_client(**pacs_settings(pynetdicom_pacs), jobs={"backend": "sqlite"})
    cut: list[Path] = []

    def cut_a_file(import_id: int) -> None:
        files = workspace.files_dir(client.app.state.context.data_dir, import_id)
        cut.append(sorted(files.rglob("IMG*.dcm"))[0])
        cut[0].write_bytes(cut[0].read_bytes()[:-100])  # pixel data cut after the analysis

    token, import_id = _confirmed(client, tmp_path, cut_a_file)
    victim = cut[0]

    in_english = _words(client, token, import_id, "en")
    assert _no_italian(in_english) == []
    assert "Verification failed for 1 files: " in in_english
    assert f"{victim.name} (pixel data truncated (" in in_english, in_english
    in_italian = _words(client, token, import_id, "it")
    assert "Verifica fallita per 1 file: " in in_italian
    assert f"{victim.name} (pixel data troncati (" in in_italian, in_italian
