"""Messages are stored as keys and parameters and said in the reader's language at the edge."""

from __future__ import annotations

from pacsbridge import errors
from pacsbridge.errors import InputError, PeerUnavailable
from pacsbridge.messages import legacy, render, said, text


def test_a_stored_error_holds_no_words_and_is_said_in_either_language():
    stored = PeerUnavailable("connection refused", peer="PACS").stored()
    assert stored == {
        "code": "peer_unavailable",
        "key": "error.peer_unavailable",
        "params": {"peer": "PACS"},
        "detail": "connection refused",
        "retriable": True,
    }
    assert errors.answer(stored, "en") == {
        "code": "peer_unavailable",
        "message": "PACS unreachable",
        "detail": "connection refused",
        "retriable": True,
    }
    assert errors.answer(stored)["message"] == "PACS non raggiungibile"  # Italian by default


def test_an_error_stored_before_keys_keeps_its_words():
    old = {"code": "peer_unavailable", "message": "PACS non raggiungibile", "detail": "x"}
    assert errors.answer(old, "en")["message"] == "PACS non raggiungibile"
    assert (
        render(legacy("Studio Archiviato (3 immagini)"), "en") == "Studio Archiviato (3 immagini)"
    )


def test_a_nested_reason_is_said_in_the_same_language_as_its_sentence():
    failed = said("state.failed", reason=PeerUnavailable(peer="RIS (HL7)").said())
    assert render(failed, "en") == "Error: RIS (HL7) unreachable"
    assert render(failed, "it") == "Errore: RIS (HL7) non raggiungibile"


def test_an_unknown_language_is_italian_and_a_missing_parameter_stays_visible():
    assert text("state.failed", "de", reason="x") == "Errore: x"
    assert text("state.failed", "en") == "Error: {reason}"


def test_a_field_error_from_the_catalogue_is_said_in_the_answer_language():
    error = InputError(
        "unknown source", fields=[{"field": "source", "error": said("retrieval.unknown_source")}]
    )
    assert error.as_dict("en")["fields"] == [{"field": "source", "error": "Source not configured"}]
    assert error.as_dict()["fields"][0]["error"] == "Sorgente non configurata"


def test_parameters_are_kept_as_json_can_hold_them():
    assert said("done.send", count=3, path=object.__name__)["params"] == {
        "count": 3,
        "path": "object",
    }
    assert said("x", items=(1, 2), other={1: {2}})["params"] == {
        "items": [1, 2],
        "other": {"1": [2]},
    }
