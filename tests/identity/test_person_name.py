"""DICOM PN → components, and the two normal forms (manual §4.A)."""

from __future__ import annotations

import unicodedata

import pytest

from pacsbridge.identity.person_name import PersonName, fold, parse, tokens


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("ROSSI^MARIO", ("ROSSI", "MARIO", ""), id="family-given"),
        pytest.param("ROSSI^MARIO^LUIGI", ("ROSSI", "MARIO", "LUIGI"), id="middle"),
        pytest.param("ROSSI^MARIO^^DR^JR", ("ROSSI", "MARIO", ""), id="prefix-suffix-dropped"),
        pytest.param("ROSSI^MARIO^^^", ("ROSSI", "MARIO", ""), id="trailing-empty"),
        pytest.param("ROSSI", ("ROSSI", "", ""), id="family-only"),
        pytest.param("^MARIO", ("", "MARIO", ""), id="given-only"),
        pytest.param(
            "YAMADA^TARO=山田^太郎=やまだ^たろう", ("YAMADA", "TARO", ""), id="ideographic-dropped"
        ),
        pytest.param("=山田^太郎", ("", "", ""), id="no-alphabetic-group"),
        pytest.param("A^B^C^D^E^F", ("A", "B", "C"), id="sixth-component-in-suffix"),
        pytest.param("ROSSI ^MARIO ", ("ROSSI ", "MARIO ", ""), id="padding-kept-for-fold"),
        pytest.param("", ("", "", ""), id="empty"),
        pytest.param(None, ("", "", ""), id="none"),
    ],
)
def test_parse(value, expected):
    assert parse(value) == PersonName(*expected)


@pytest.mark.parametrize(
    ("value", "empty"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("^", True, id="caret"),
        pytest.param("^^^^", True, id="carets"),
        pytest.param("  ^ ^  ", True, id="spaces-and-carets"),
        pytest.param("^^^DR^", True, id="prefix-only"),
        pytest.param("^^^^JR", True, id="suffix-only"),
        pytest.param("=ロッシ^マリオ", True, id="ideographic-only"),
        pytest.param("ROSSI", False, id="family"),
        pytest.param("^MARIO", False, id="given"),
        pytest.param("^^LUIGI", False, id="middle"),
        pytest.param("***", False, id="punctuation-is-not-empty"),
    ],
)
def test_is_empty(value, empty):
    assert parse(value).is_empty is empty


def test_given_names_join_given_and_middle():
    assert fold(parse("ROSSI^MARIO^LUIGI").given_names) == "mario luigi"
    assert fold(parse("ROSSI^MARIO").given_names) == "mario"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("  De   Luca ", "de luca", id="case-and-whitespace"),
        pytest.param("NICOLÒ", "nicolò", id="accent-kept"),
        pytest.param(unicodedata.normalize("NFD", "NICOLÒ"), "nicolò", id="decomposed-accent"),
        pytest.param("STRAUß", "strauss", id="sharp-s-case-folds"),
        pytest.param("D'ANGELO", "d'angelo", id="apostrophe-kept"),
        pytest.param("ИВАНОВ", "иванов", id="cyrillic"),
        pytest.param("", "", id="empty"),
    ],
)
def test_fold(text, expected):
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("D'ANGELO", ("D", "ANGELO"), id="apostrophe"),
        pytest.param("D’ANGELO", ("D", "ANGELO"), id="typographic-apostrophe"),
        pytest.param("NICOLÒ", ("NICOLO",), id="accent"),
        pytest.param("NICOLO'", ("NICOLO",), id="accent-as-apostrophe"),
        pytest.param("de luca", ("DE", "LUCA"), id="lower-case"),
        pytest.param("CERRI*SIMONE", ("CERRI", "SIMONE"), id="asterisk"),
        pytest.param("ROSSI, MARIO", ("ROSSI", "MARIO"), id="comma"),
        pytest.param("ROSSI-BIANCHI", ("ROSSI", "BIANCHI"), id="hyphen"),
        pytest.param("STRAUß", ("STRAUSS",), id="sharp-s"),
        pytest.param("WAŁĘSA", ("WALESA",), id="polish-l"),
        pytest.param("SØRENSEN", ("SORENSEN",), id="danish-o"),
        pytest.param("ĐOKOVIĆ", ("DOKOVIC",), id="croatian-d"),
        pytest.param("Иванов", ("IVANOV",), id="cyrillic"),
        pytest.param("<b>ROSSI</b>", ("B", "ROSSI", "B"), id="html-letters-kept"),
        pytest.param("TEST1", ("TEST1",), id="digits-significant"),
        pytest.param("***", (), id="punctuation-only"),
        pytest.param("", (), id="empty"),
    ],
)
def test_tokens(text, expected):
    assert tokens(text) == expected
