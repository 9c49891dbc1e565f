"""/healthz and /readyz against real peers: a real PACS and source, a closed port, a full disk.

``/readyz`` is what a load balancer probes: 200 only when the database (migrated), the queue,
free disk and the PACS answer; each check with its latency; no host, address or patient in it.
"""

from __future__ import annotations

import threading
from typing import Any

from conftest import pacs_settings
from peers.dicom import free_port

QUEUED = {"jobs": {"backend": "sqlite"}}


def _source(name: str, peer: Any) -> dict[str, Any]:
    return {"name": name, "ae_title": peer.ae_title, "host": peer.host, "port": peer.port}


def _checks(answer: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in answer.json()["checks"]}


def test_healthz_answers_alive_with_the_version(make_client) -> None:  # noqa: ANN001
    answer = make_client().get("/healthz")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and answer.json()["version"]


def test_readyz_is_ready_when_database_queue_disk_pacs_and_source_answer(
    make_client, pynetdicom_pacs, dcmqrscp_pacs
) -> None:  # noqa: ANN001
    client = make_client(
        **pacs_settings(pynetdicom_pacs), **QUEUED, sources=[_source("ao17", dcmqrscp_pacs.peer)]
    )

    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "ready"
    checks = _checks(answer)
    assert list(checks) == ["database", "queue", "disk", "pacs", "source:ao17"]
    assert all(c["ok"] and c["detail"] == "ok" for c in checks.values()), checks
    assert all(0 < c["latency_ms"] < 3000 for c in checks.values()), checks
    # in parallel: the whole takes about the slowest check, not their sum
    assert answer.json()["latency_ms"] < sum(c["latency_ms"] for c in checks.values()) + 50


def test_readyz_is_503_naming_the_source_that_does_not_answer_and_no_host(
    make_client, pynetdicom_pacs
) -> None:  # noqa: ANN001
    closed = free_port()
    source = {"name": "ao99", "ae_title": "GONE", "host": "127.0.0.1", "port": closed}
    client = make_client(**pacs_settings(pynetdicom_pacs), **QUEUED, sources=[source])

    answer = client.get("/readyz")

    assert answer.status_code == 503
    checks = _checks(answer)
    assert checks["source:ao99"] == {**checks["source:ao99"], "ok": False, "required": True}
    assert checks["source:ao99"]["detail"] == "peer_unavailable"
    assert checks["pacs"]["ok"] is True
    assert "127.0.0.1" not in answer.text and str(closed) not in answer.text
    assert str(pynetdicom_pacs.peer.port) not in answer.text


def test_a_source_down_keeps_the_node_ready_when_sources_are_not_required(
    make_client, pynetdicom_pacs
) -> None:  # noqa: ANN001
    source = {"name": "ao99", "ae_title": "GONE", "host": "127.0.0.1", "port": free_port()}
    client = make_client(
        **pacs_settings(pynetdicom_pacs),
        **QUEUED,
        sources=[source],
        health={"sources_required": False},
    )

    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.text
    assert _checks(answer)["source:ao99"] == {
        **_checks(answer)["source:ao99"],
        "ok": False,
        "required": False,
    }


def test_readyz_is_503_when_the_pacs_is_down(make_client) -> None:  # noqa: ANN001
    client = make_client(pacs={"host": "127.0.0.1", "port": free_port(), "ae_title": "NOPACS"})

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert _checks(answer)["pacs"]["detail"] == "peer_unavailable"


def test_readyz_is_503_when_free_disk_is_below_the_minimum(make_client, pynetdicom_pacs) -> None:  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs), health={"min_free_bytes": 2**62})

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert _checks(answer)["disk"] == {**_checks(answer)["disk"], "ok": False, "detail": "disk_low"}


def test_readyz_is_503_while_migrations_are_pending(make_client, pynetdicom_pacs) -> None:  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs))
    engine = client.app.state.context.sessions.kw["bind"]
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")

    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert _checks(answer)["database"]["detail"] == "migrations_pending"


def test_simultaneous_probes_share_one_run_of_the_checks(make_client, pynetdicom_pacs) -> None:  # noqa: ANN001
    """Twenty probes at once within ``health.cache_seconds``: one answer, the same latencies
    (each C-ECHO ran once), so /readyz cannot be used to flood the PACS."""
    client = make_client(**pacs_settings(pynetdicom_pacs), health={"cache_seconds": 30})
    answers: list[Any] = []

    def probe() -> None:
        answers.append(client.get("/readyz").json())

    threads = [threading.Thread(target=probe) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 20 and all(a["status"] == "ready" for a in answers)
    assert len({a["latency_ms"] for a in answers}) == 1
