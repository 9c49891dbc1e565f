"""The words the pages put on a state: pure functions of web/pages, without a browser."""

from __future__ import annotations

import pytest

from pacsbridge import audit
from pacsbridge.imports import monitor
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.models import PhaseRun
from pacsbridge.imports.views import BADGES as STATE_BADGES
from pacsbridge.messages import said
from pacsbridge.web.pages import strings, templating, view

#: Kinds never written for an import (retrievals, maintenance), so never on its monitor.
#: Kinds never written under an import: the retrieval side, staff actions, refused launches.
NOT_ON_THE_MONITOR = (
    "retrieval.",
    "cache.",
    "scp.",
    "package.",
    "files.swept",
    "launch.refused",
    "staff.",
    "support.retrieval_retried",
    "support.purged",
    "source.",
    "audit.exported",
    "atna.",
)


def test_conflict_notice_shows_the_pacs_patient_as_a_name_not_in_dicom_form() -> None:
    study = {"pacs_status": "conflict", "pacs_patient": "TEST^TEST (97119460)"}
    [notice] = view.study_messages(study, "it")
    assert "TEST TEST (97119460)" in notice["text"]
    assert "^" not in notice["text"]
    assert notice["gravity"] == "danger"


@pytest.mark.parametrize(
    ("lang", "words"),
    [("it", "possibile errore di battitura"), ("en", "possible typing error")],
)
def test_similar_name_hint_is_a_warning_in_the_page_language(lang: str, words: str) -> None:
    patient = {
        "message_keys": ["identity.name_mismatch"],
        "hints": ["nome simile"],
        "hint_keys": ["identity.name_similar"],
    }
    mismatch, hint = view.patient_messages(patient, lang)
    assert mismatch["gravity"] == "danger"
    assert hint["gravity"] == "warning"
    assert words in hint["text"]


def test_similar_name_stored_before_the_keys_is_still_a_warning() -> None:
    patient = {"message_keys": ["identity.name_mismatch"], "hints": ["nome simile"]}
    assert view.patient_messages(patient, "it")[1] == {"text": "nome simile", "gravity": "warning"}


def test_cancelled_import_has_its_own_grey_badge_and_failures_stay_red() -> None:
    assert STATE_BADGES[ImportState.CANCELLED] == "cancelled"
    assert view.badge("cancelled", "it") == {"css": "text-bg-secondary", "label": "Annullata"}
    assert view.badge("cancelled", "en")["label"] == "Cancelled"
    assert view.badge(STATE_BADGES[ImportState.FAILED], "it")["label"] == "Errore"


@pytest.mark.parametrize("state", ["completed", "skipped", "pending", "failed", "cancelled"])
def test_attempts_left_are_not_shown_for_a_phase_that_neither_runs_nor_retries(state: str) -> None:
    phase = {"phase": "send", "state": state, "attempts_left": 119, "message": "x"}
    assert strings.phase_row(phase, "it")["attempts"] is None


@pytest.mark.parametrize("state", ["running", "retrying"])
def test_attempts_left_are_shown_while_a_phase_runs_or_waits_to_retry(state: str) -> None:
    phase = {"phase": "send", "state": state, "attempts_left": 119, "message": "x"}
    assert strings.phase_row(phase, "it")["attempts"] == 119


def test_a_waiting_phase_with_no_stored_message_says_da_elaborare() -> None:
    phase = {"phase": "merge", "state": "pending", "attempts_left": 120, "message": None}
    assert strings.phase_row(phase, "it")["text"] == "Da Elaborare"
    assert "resaid" not in strings.monitor("en", 1)  # the progress JSON says it in the language


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_each_final_state_has_its_own_closing_text(state: str) -> None:
    running = strings.closing("processing", "it")["text"]
    closing = strings.closing(state, "it")
    assert closing["state"] == state
    assert closing["text"] != running
    assert "background" not in closing["text"]


def test_every_audit_kind_of_an_import_has_words_in_both_languages() -> None:
    kinds = [k for k in audit.KINDS if not k.startswith(NOT_ON_THE_MONITOR)]
    missing = [k for k in kinds if k not in strings.EVENTS]
    assert not missing
    for lang in ("it", "en"):
        row = strings.event_row({"kind": "import.created", "outcome": "ok"}, lang)
        assert "." not in row["label"] and row["outcome_label"] not in ("ok", "")
    assert strings.event_row({"kind": "files.deleted", "outcome": "error"}, "it") == {
        "kind": "files.deleted",
        "outcome": "error",
        "label": "File temporanei eliminati",
        "outcome_label": "errore",
    }


@pytest.mark.parametrize(
    ("kind", "it", "en"),
    [
        ("int_parsing", "non è un numero intero", "not a whole number"),
        ("string_pattern_mismatch", "non è nel formato atteso", "not in the expected form"),
        ("something_new", "valore non valido", "invalid value"),
    ],
)
def test_validation_errors_are_said_in_the_page_language(kind: str, it: str, en: str) -> None:
    field = {"field": "import_id", "error": "Input should be a valid integer", "type": kind}
    assert templating.field_error(field, "it") == it
    assert templating.field_error(field, "en") == en


def test_a_phase_stored_as_a_key_is_said_in_the_page_language_its_reason_too() -> None:
    done = PhaseRun(phase="send", state="completed", message_key="done.send")
    done.message_params = {"count": 6}
    assert monitor._phase("send", done, None, "en")["message"] == "Study archived (6)"
    assert monitor._phase("send", done, None, "it")["message"] == "Studio Archiviato (6 immagini)"
    reason = said("error.peer_unavailable", peer="PACS")
    failed = PhaseRun(phase="send", state="failed", message_key="state.failed")
    failed.message_params = {"reason": reason}
    english = monitor._phase("send", failed, None, "en")
    assert english["message"] == "Error: PACS unreachable"
    assert english["message_key"] == "state.failed"
    assert monitor._phase("send", failed, None, "it")["message"] == "Errore: PACS non raggiungibile"


def test_a_phase_migrated_with_its_old_words_shows_them_as_written() -> None:
    old = PhaseRun(phase="send", state="completed", message_key="text.legacy")
    old.message_params = {"text": "Studio Archiviato (6 immagini)"}
    assert monitor._phase("send", old, None, "en")["message"] == "Studio Archiviato (6 immagini)"
