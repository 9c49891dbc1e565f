"""Log records carry the request id and the import or retrieval id; JSON lines on request.

The ids are ours: a proxy's ``X-Request-ID`` is kept only when it is a plain token, anything
else (a header is untrusted input) is replaced, so no outside value reaches the log.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import warnings
from typing import Any

import pytest

from conftest import bearer, launch
from pacsbridge import logs


@pytest.fixture
def json_log() -> Any:
    """``logs.configure(format="json")`` into a buffer; the logging state restored after."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level, warnings.showwarning, threading.excepthook
    levels = {n: logging.getLogger(n).level for n in ("pynetdicom", "sqlalchemy")}
    buffer = io.StringIO()
    logs.configure("DEBUG", stream=buffer, format="json")
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    warnings.showwarning, threading.excepthook = saved[2], saved[3]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_a_request_line_carries_the_proxy_request_id_and_the_import_id(
    make_client, json_log
) -> None:  # noqa: ANN001
    client = make_client()
    token = launch(client)
    created = client.post("/api/v1/imports", headers=bearer(token), json={"size": 10})
    import_id = created.json()["id"]
    request_id = "3f2a9c0e8b7d4e1fa0b1c2d3e4f5a6b7"  # nginx's $request_id

    answer = client.get(
        f"/api/v1/imports/{import_id}", headers={**bearer(token), "X-Request-ID": request_id}
    )

    assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id
    [line] = [r for r in _lines(json_log) if r.get("request_id") == request_id]
    assert line["import_id"] == import_id and line["level"] == "DEBUG"
    assert (
        line["message"]
        == "GET /api/v1/imports/{import_id} 200 in " + line["message"].split(" in ")[1]
    )
    assert {"time", "logger", "message"} <= set(line)


def test_a_request_id_that_is_not_a_plain_token_is_replaced(make_client, json_log) -> None:  # noqa: ANN001
    client = make_client()
    hostile = "ROSSI^MARIO RSSMRA80A01H501U"

    answer = client.get("/healthz", headers={"X-Request-ID": hostile})

    given = answer.headers["x-request-id"]
    assert given != hostile and len(given) == 32
    assert "ROSSI" not in json_log.getvalue()
    assert any(r.get("request_id") == given for r in _lines(json_log))


def test_ids_bound_around_a_task_reach_records_of_its_threads_own_context(json_log) -> None:  # noqa: ANN001
    def task() -> None:
        with logs.bound(import_id=12):
            logging.getLogger("pacsbridge.imports").info("phase send started")
            with logs.bound(retrieval_id=3):
                logging.getLogger("pacsbridge.x").info("inner")
        logging.getLogger("pacsbridge.x").info("after")

    worker = threading.Thread(target=task)
    worker.start()
    worker.join()

    first, inner, after = _lines(json_log)[-3:]
    assert first["import_id"] == 12 and "retrieval_id" not in first
    assert inner["import_id"] == 12 and inner["retrieval_id"] == 3
    assert "import_id" not in after


def test_only_our_own_ids_may_be_bound() -> None:
    with pytest.raises(ValueError, match="not a log id"), logs.bound(patient_name="X"):
        pass
