"""Support console, the audit export: every event of a date range as CSV or JSON, streamed.

The rows are read in batches (``audit.events_between``) and written as they come, so an
export of a year of events never sits in memory. The export itself is audited
(``audit.exported``, with the staff member, the format and the range) before the first byte;
it becomes an ATNA Audit Log Used message (docs/atna.md).
Needs ``read``: support and administrators.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import InputError
from pacsbridge.web.deps import Ctx
from pacsbridge.web.pages.session import render
from pacsbridge.web.pages.support.auth import SupportConsole
from pacsbridge.web.pages.support.common import base_context, days

router = APIRouter(include_in_schema=False)
BASE = "/support/audit"
COLUMNS = (
    "id",
    "at",
    "kind",
    "actor",
    "outcome",
    "code",
    "message",
    "import_id",
    "retrieval_id",
    "details",
)
MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): = + - @,
#: tab, carriage return; a line feed too (a cell may start on a new line of a quoted value).
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")
#: A formula start right after a semicolon: Excel in an Italian locale splits on ";" (its list
#: separator), so the text after one is the start of a cell there.
_AFTER_SEMICOLON = re.compile(r";(?=[=+\-@\t\r\n])")


@router.get(BASE, name="support_audit")
def audit_page(request: Request, page: SupportConsole) -> Response:
    return render(request, "support/audit.html", base_context(page, "audit"))


@router.get(BASE + "/export", name="support_audit_export")
def export(
    request: Request,
    ctx: Ctx,
    page: SupportConsole,
    dal: str = "",
    al: str = "",
    formato: str = "csv",
) -> Response:
    start, end = days(dal, al)
    if start is None or end is None or end <= start or formato not in MEDIA:
        raise InputError(
            "export needs dal <= al and formato csv or json",
            fields=[{"field": "dal", "error": "missing or after al", "type": "missing"}],
        )
    details: dict[str, Any] = {
        "format": formato,
        "from": dal,
        "to": al,
        # the log read, by its URI, and who read it from where (ATNA Audit Log Used)
        "uri": f"{ctx.settings.public_url}{BASE}/export?"
        + urlencode({"dal": dal, "al": al, "formato": formato}),
        "address": request.client.host if request.client else "",
    }
    with ctx.sessions.begin() as session:
        audit.record(
            session, ctx.clock.now(), "audit.exported", actor=page.staff.username, **details
        )
    body = _csv(ctx, start, end) if formato == "csv" else _json(ctx, start, end)
    name = f"audit-{dal}-{al}.{formato}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body, media_type=MEDIA[formato], headers=headers)


def row(event: audit.AuditEvent) -> dict[str, Any]:
    """One event as exported: the columns of :data:`COLUMNS`."""
    return {
        **audit.as_dict(event),
        "import_id": event.import_id,
        "retrieval_id": event.retrieval_id,
    }


def _events(ctx: Context, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    with ctx.sessions() as session:
        for event in audit.events_between(session, start, end):
            yield row(event)


def _csv(ctx: Context, start: datetime, end: datetime) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)  # OWASP: every cell in quotes
    writer.writerow(COLUMNS)
    for event in _events(ctx, start, end):
        values = {**event, "details": json.dumps(event["details"], ensure_ascii=False)}
        writer.writerow([cell(values[c]) for c in COLUMNS])
        if buffer.tell() > 64_000:
            yield _drain(buffer)
    yield _drain(buffer)


def cell(value: Any) -> Any:
    """No spreadsheet formula from the data (OWASP CSV injection): a ``'`` before a formula
    start at the beginning of the value and after each ``;`` (a cell start in Excel's
    semicolon-separated locales)."""
    if not isinstance(value, str):
        return "" if value is None else value
    value = _AFTER_SEMICOLON.sub(";'", value)
    return "'" + value if value.startswith(FORMULA) else value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _json(ctx: Context, start: datetime, end: datetime) -> Iterator[str]:
    yield "["
    for index, event in enumerate(_events(ctx, start, end)):
        yield ("," if index else "") + "\n" + json.dumps(event, ensure_ascii=False)
    yield "\n]\n"
