"""What the ATNA tests do again and again: settings for a collector, a sample event recorded as
the call sites record it, the spool's size, and sending it all with the product's sender."""

from __future__ import annotations

import base64
import io
from typing import Any

from lxml import etree
from pydicom.filereader import read_dataset
from sqlalchemy import func, select

from atna.collector import Rsyslog
from atna.samples import EVENTS
from pacsbridge import audit
from pacsbridge.atna.outbox import AtnaMessage
from pacsbridge.atna.sender import Sender


def atna_settings(collector: Rsyslog, **extra: Any) -> dict[str, Any]:
    return {
        "atna": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": collector.port,
            "transport": "tcp",
            "retry_seconds": 0.2,
            "timeout_seconds": 3,
            **extra,
        }
    }


def record_sample(ctx, kind: str) -> None:  # noqa: ANN001
    values = dict(EVENTS[kind][0])
    actor, outcome = values.pop("actor", ""), values.pop("outcome", "ok")
    with ctx.sessions.begin() as session:
        audit.record(session, ctx.clock.now(), kind, actor=actor, outcome=outcome, **values)


def spooled(ctx) -> int:  # noqa: ANN001
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(AtnaMessage))


def send_all(ctx) -> int:  # noqa: ANN001
    sender, sent = Sender(ctx.sessions, ctx.settings, ctx.clock), 0
    try:
        while (batch := sender.run_once()) > 0:
            sent += batch
    finally:
        sender.stop()
    return sent


def query_level(message: etree._Element) -> str:
    """The Query/Retrieve Level of the identifier an ATNA Query carries."""
    encoded = message.find(".//ParticipantObjectQuery").text
    return str(read_dataset(io.BytesIO(base64.b64decode(encoded)), False, True).QueryRetrieveLevel)
