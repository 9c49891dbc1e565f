"""RIS launch contract (manual §2, §6): tokens, keys, validation, expiry."""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from conftest import LAUNCH_BODY, RIS_KEY, bearer, launch
from pacsbridge.audit import AuditEvent
from pacsbridge.imports.models import Launch


def test_launch_answers_token_url_and_expiry(make_client):
    client = make_client()
    answer = client.post("/api/v1/launch", json=LAUNCH_BODY, headers=bearer(RIS_KEY))
    assert answer.status_code == 201
    body = answer.json()
    assert len(body["token"]) >= 32
    assert body["url"].endswith(f"/imports/start?token={body['token']}")
    assert body["expires_at"].startswith(str(date.today().year))


def test_token_is_stored_only_as_a_hash(make_client):
    client = make_client()
    token = launch(client)
    ctx = client.app.state.context
    with ctx.sessions() as session:
        row = session.scalars(select(Launch)).one()
        assert token not in row.token_hash
        assert len(row.token_hash) == 64
        assert session.scalars(select(AuditEvent.kind)).all() == ["launch.created"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", f"Token {RIS_KEY}"])
def test_launch_needs_the_ris_key(make_client, header):
    client = make_client()
    headers = {"Authorization": header} if header else {}
    answer = client.post("/api/v1/launch", json=LAUNCH_BODY, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key_invalid"


def _with(path: str, value):
    body = copy.deepcopy(LAUNCH_BODY)
    section, field = path.split(".")
    if value is None:
        body[section].pop(field)
    else:
        body[section][field] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("order.number", None),
        ("order.number", "  "),
        ("patient.family_name", ""),
        ("patient.birth_date", "01/01/1974"),
        ("patient.birth_date", (date.today() + timedelta(days=1)).isoformat()),
        ("patient.sex", "X"),
        ("patient.id", None),
    ],
)
def test_invalid_launch_data_names_the_field(make_client, path, value):
    client = make_client()
    answer = client.post("/api/v1/launch", json=_with(path, value), headers=bearer(RIS_KEY))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["message"] == "Mancanza dati / Dati in ingresso non validi"
    assert path in [f["field"] for f in error["fields"]]


def test_unknown_token_is_401_token_not_found(make_client):
    client = make_client()
    answer = client.get("/api/v1/imports", headers=bearer("nope"))
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Token Not Found or Expired"


def test_token_expires(make_client, clock):
    client = make_client()
    token = launch(client)
    assert client.get("/api/v1/imports", headers=bearer(token)).status_code == 200
    clock.advance(hours=8, seconds=1)
    answer = client.get("/api/v1/imports", headers=bearer(token))
    assert answer.status_code == 401
    assert "Traceback" not in answer.text


def test_token_is_bound_to_its_patient_and_order(make_client):
    client = make_client()
    first = launch(client)
    other = copy.deepcopy(LAUNCH_BODY)
    other["patient"]["id"] = "OTHER"
    second = launch(client, other)
    created = client.post("/api/v1/imports", headers=bearer(first)).json()
    assert client.get(f"/api/v1/imports/{created['id']}", headers=bearer(first)).status_code == 200
    answer = client.get(f"/api/v1/imports/{created['id']}", headers=bearer(second))
    assert answer.status_code == 404
    assert client.get("/api/v1/imports", headers=bearer(second)).json()["imports"] == []
