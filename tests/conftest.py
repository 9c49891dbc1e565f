"""Suite-wide fixtures: real peers (tests/peers), settings factory, runtime, API client.

Peers are session-scoped; data are function-scoped (every test makes fresh UIDs). No test
reads the developer's environment: PACSBRIDGE_* variables are cleared for each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
def make_settings(tmp_path: Path, database: dict[str, Any]) -> Callable[..., Settings]:
    """Settings for one test: its own data folder, immediate jobs, test API keys, and the
    test's ``database`` (SQLite in the data folder unless the test also runs on PostgreSQL)."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "storage": {"data_dir": str(tmp_path / "data")},
            "ris": {"api_keys": [RIS_KEY]},
            "fse": {"api_keys": [FSE_KEY]},
            "jobs": {"backend": "immediate"},
            "pacs": {"host": "127.0.0.1", "port": 1, "ae_title": "NOPACS"},
            "metrics": {"bearer_tokens": [METRICS_TOKEN]},
        }
        if database:
            base["database"] = database
        return Settings(**deep_merge(base, overrides))

    return make


# --------------------------------------------------------------------------------------------
# The database: SQLite for every test; PostgreSQL too for the integration tests listed below.
# --------------------------------------------------------------------------------------------

#: Integration tests of imports and retrievals that run twice, ``[sqlite]`` and
#: ``[postgresql]``: one per flow and per kind of concurrency the database must arbitrate
#: (leases, the shared C-MOVE, retries, expiry). Kept small: each PostgreSQL run costs a fresh
#: database and its migrations (about a second). A name listed here that its module no longer
#: has fails the collection, so a rename cannot silently drop the PostgreSQL run.
ALSO_ON_POSTGRESQL: dict[str, frozenset[str]] = {
    "atna/test_delivery.py": frozenset(
        {
            "test_one_sender_of_a_cluster_sends_at_a_time_and_a_stopped_one_hands_over",
            "test_a_full_spool_drops_new_messages_with_an_audit_event_and_a_metric",
        }
    ),
    "imports/test_analysis.py": frozenset({"test_matching_patient_from_a_cd"}),
    "staff/test_directory.py": frozenset(
        {"test_injection_names_are_refused_at_sign_in_audited_and_make_no_row"}
    ),
    "imports/test_confirmation.py": frozenset({"test_confirm_twice_is_a_conflict"}),
    "imports/test_pipeline.py": frozenset(
        {
            "test_pacs_down_then_up_retries_and_completes",
            "test_reaper_re_enqueues_a_confirmed_pipeline_whose_task_was_lost",
        }
    ),
    "operations/test_health.py": frozenset(
        {"test_readyz_is_ready_when_database_queue_disk_pacs_and_source_answer"}
    ),
    "support/test_console_pages.py": frozenset({"test_each_search_filter_finds_only_its_imports"}),
    "retrievals/test_support_console.py": frozenset(
        {"test_retrievals_are_filtered_by_state_source_accession_and_date"}
    ),
    "staff/test_accounts.py": frozenset(
        {"test_five_wrong_passwords_lock_the_account_then_it_opens_after_the_lockout"}
    ),
    "retrievals/test_cache.py": frozenset(
        {
            "test_simultaneous_requests_share_one_move",
            "test_expiry_deletes_and_a_new_request_retrieves_again",
        }
    ),
    "retrievals/test_failures.py": frozenset(
        {"test_source_down_is_retried_then_fails_or_recovers"}
    ),
    "retrievals/test_flow.py": frozenset({"test_package_answers_range_requests"}),
    "retrievals/test_lifecycle.py": frozenset(
        {
            "test_two_writers_finishing_one_retrieval_have_one_winner",
            "test_a_shared_study_settling_twice_at_once_finishes_and_audits_its_retrieval_once",
            "test_a_study_is_never_both_abandoned_and_moved",
        }
    ),
    "retrievals/test_source_faults.py": frozenset(
        {"test_gaps_a_source_never_sends_make_the_retrieval_partial_with_their_uids"}
    ),
}
TESTS = Path(__file__).parent
PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
_seen_on_postgresql: dict[str, set[str]] = {}


def _listed_module(metafunc: pytest.Metafunc) -> str | None:
    path = Path(metafunc.definition.path)
    module = path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else None
    return module if module in ALSO_ON_POSTGRESQL else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``database`` over sqlite and postgresql for the tests listed above."""
    module = _listed_module(metafunc)
    if module is None:
        return
    name = metafunc.definition.originalname
    _seen_on_postgresql.setdefault(module, set()).add(name)
    if name in ALSO_ON_POSTGRESQL[module] and "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    for module, seen in _seen_on_postgresql.items():
        gone = sorted(ALSO_ON_POSTGRESQL[module] - seen)
        if gone:
            raise pytest.UsageError(f"ALSO_ON_POSTGRESQL names tests {module} lacks: {gone}")


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """``{}`` (SQLite in the data folder), or ``{"url": ...}`` of a fresh PostgreSQL database
    created for this test and dropped after it (``[postgresql]`` runs, see above)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield {}
        return
    with fresh_postgresql("pacsbridge_it") as url:
        yield {"url": url}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for one test, dropped after it."""
    with fresh_postgresql("pacsbridge_test") as url:
        yield url


@contextmanager
def fresh_postgresql(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database on 127.0.0.1:5432, dropped on exit; fails loudly if none.

    Connects as ``postgres`` with libpq's own password lookup (``PGPASSWORD``, ``~/.pgpass``),
    as ``scripts/install-test-deps`` configures it.
    """
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(**PG_ADMIN)
    except psycopg2.OperationalError as error:
        pytest.fail(
            f"PostgreSQL must accept postgres@127.0.0.1 (scripts/install-test-deps): {error}"
        )
    admin.autocommit = True
    try:
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
        yield PG_URL.format(name=name)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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


METRICS_TOKEN = "test-metrics-token"


def scrape(client: TestClient) -> str:
    """``/metrics`` as Prometheus reads it (the test token of ``metrics.bearer_tokens``)."""
    answer = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert answer.status_code == 200, answer.text
    return answer.text


def sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    """The sum of the samples of a scrape named ``name`` with these labels (0 when none)."""
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == name and all(found.labels.get(k) == v for k, v in labels.items())
    )
