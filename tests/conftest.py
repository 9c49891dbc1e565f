"""Suite-wide fixtures: real peers (tests/peers), settings factory, runtime, API client.

Peers are session-scoped; data are function-scoped (every test makes fresh UIDs). No test
reads the developer's environment: PACSBRIDGE_* variables are cleared for each test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pacsbridge import runtime
from pacsbridge.context import MovableClock
from pacsbridge.settings import Settings

pytest_plugins = ["peers.plugin"]

RIS_KEY = "test-ris-key"
FSE_KEY = "test-fse-key"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PACSBRIDGE_"):
            monkeypatch.delenv(name)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for one test: its own data folder, immediate jobs, test API keys."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "storage": {"data_dir": str(tmp_path / "data")},
            "ris": {"api_keys": [RIS_KEY]},
            "fse": {"api_keys": [FSE_KEY]},
            "jobs": {"backend": "immediate"},
            "pacs": {"host": "127.0.0.1", "port": 1, "ae_title": "NOPACS"},
        }
        return Settings(**deep_merge(base, overrides))

    return make


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime.now(UTC))


@pytest.fixture
def make_client(
    make_settings: Callable[..., Settings], clock: MovableClock
) -> Iterator[Callable[..., TestClient]]:
    """An API client over a freshly built runtime; ``client.app.state.context`` is its Context."""
    built: list[runtime.Runtime] = []

    def make(settings: Settings | None = None, **overrides: Any) -> TestClient:
        rt = runtime.build(settings or make_settings(**overrides), clock=clock)
        built.append(rt)
        return TestClient(rt.app(), raise_server_exceptions=False)

    yield make
    for rt in built:
        rt.close()


def pacs_settings(pacs: Any) -> dict[str, Any]:
    """Settings overrides pointing at a running test PACS (tests/peers)."""
    peer = pacs.peer
    return {"pacs": {"ae_title": peer.ae_title, "host": peer.host, "port": peer.port}}


LAUNCH_BODY: dict[str, Any] = {
    "patient": {
        "id": "IOTELU1234",
        "issuer": "AO17",
        "family_name": "TEST",
        "given_name": "TEST",
        "birth_date": "1974-01-01",
        "sex": "M",
    },
    "order": {"number": "ORD-1", "accession_number": "ACC1"},
    "operator": {"id": "op1", "name": "Operatore Uno"},
}


def launch(client: TestClient, body: dict[str, Any] | None = None) -> str:
    """Launch as the RIS would and return the token."""
    answer = client.post(
        "/api/v1/launch", json=body or LAUNCH_BODY, headers={"Authorization": f"Bearer {RIS_KEY}"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
