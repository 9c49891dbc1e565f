"""ATNA messages reach a real rsyslog: every kind, over TCP and TLS, and after an outage.

Events are recorded as the call sites record them (``audit.record`` in a session of the
runtime's), so the hook, the spool table, the sender and the framing are all the product's.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lxml import etree
from sqlalchemy import select

from atna.collector import Rsyslog, assert_valid, xml_of
from atna.helpers import atna_settings, record_sample, send_all, spooled
from atna.samples import EVENTS
from conftest import sample, scrape
from pacsbridge import audit
from pacsbridge.atna.sender import Sender


def _event_ids(received: list[dict[str, Any]]) -> list[str]:
    ids = []
    for message in received:
        root = etree.fromstring(xml_of(message))
        ids.append(root.find("EventIdentification/EventID").get("csd-code"))
    return ids


def test_every_kind_arrives_at_rsyslog_in_order_as_a_valid_ihe_syslog_message(
    make_client,
    collector,
    schema,  # noqa: ANN001
) -> None:
    ctx = make_client(**atna_settings(collector, app_name="pacsbridge-test")).app.state.context
    kinds = sorted(EVENTS)
    for kind in kinds:
        record_sample(ctx, kind)
    assert spooled(ctx) == len(kinds)

    assert send_all(ctx) == len(kinds)
    received = collector.wait_for(len(kinds))
    assert len(received) == len(kinds)
    for message in received:
        assert (message["pri"], message["msgid"]) == ("85", "IHE+RFC-3881")
        assert message["app"] == "pacsbridge-test"
        assert message["msg"].startswith("\ufeff<?xml")
        assert_valid(schema, xml_of(message))
    assert _event_ids(received) == [EVENTS[k][1] for k in kinds]
    assert spooled(ctx) == 0


def test_collector_down_keeps_messages_then_delivers_each_once_in_order_when_it_starts(
    make_client,
    tmp_path,
    caplog,  # noqa: ANN001
) -> None:
    collector = Rsyslog(tmp_path / "late")  # its port, nobody listening yet
    ctx = make_client(**atna_settings(collector)).app.state.context
    sender = Sender(ctx.sessions, ctx.settings, ctx.clock)
    sender.start()
    try:
        with caplog.at_level(logging.WARNING, logger="pacsbridge.atna.sender"):
            for index in range(30):
                record_sample(ctx, "staff.signed_in" if index % 2 else "staff.signed_out")
            time.sleep(1)  # several attempts at a collector that is not there
        assert spooled(ctx) == 30
        assert "ATNA collector 127.0.0.1:" in caplog.text and "IOTELU1234" not in caplog.text
        collector.start()
        received = collector.wait_for(30)
        time.sleep(1)  # nothing more may come: no message twice
        received = collector.messages()
    finally:
        sender.stop()
        collector.stop()
    assert len(received) == 30
    types = [
        etree.fromstring(xml_of(m)).find("EventIdentification/EventTypeCode").get("csd-code")
        for m in received
    ]
    assert types == ["110123" if i % 2 == 0 else "110122" for i in range(30)]
    assert spooled(ctx) == 0


def test_a_full_spool_drops_new_messages_with_an_audit_event_and_a_metric(
    make_client,
    collector,  # noqa: ANN001
) -> None:
    client = make_client(**atna_settings(collector, spool_max_messages=2))
    ctx = client.app.state.context
    before = sample(scrape(client), "pacsbridge_atna_messages_dropped_total", reason="spool_full")
    for _ in range(3):
        record_sample(ctx, "staff.signed_in")
    assert spooled(ctx) == 2
    with ctx.sessions() as session:
        dropped = session.scalars(
            select(audit.AuditEvent).where(audit.AuditEvent.kind == "atna.dropped")
        ).all()
    assert [d.details["dropped_kind"] for d in dropped] == ["staff.signed_in"]
    after = sample(scrape(client), "pacsbridge_atna_messages_dropped_total", reason="spool_full")
    assert after == before + 1


def test_disabled_atna_spools_nothing(make_client, collector) -> None:  # noqa: ANN001
    ctx = make_client(**atna_settings(collector, enabled=False)).app.state.context
    record_sample(ctx, "staff.signed_in")
    assert spooled(ctx) == 0


def test_a_collector_restarted_on_its_port_loses_nothing_sent_after_the_restart(
    make_client,
    collector,  # noqa: ANN001
) -> None:
    ctx = make_client(**atna_settings(collector)).app.state.context
    sender = Sender(ctx.sessions, ctx.settings, ctx.clock)
    try:
        record_sample(ctx, "staff.signed_in")
        assert sender.run_once() == 1 and len(collector.wait_for(1)) == 1
        collector.stop()  # the sender's connection is now dead, unknown to it
        collector.start()
        for _ in range(3):
            record_sample(ctx, "staff.signed_out")
        while sender.run_once():
            pass
    finally:
        sender.stop()
    assert len(collector.wait_for(4)) == 4
    assert spooled(ctx) == 0


def test_one_sender_of_a_cluster_sends_at_a_time_and_a_stopped_one_hands_over(
    make_client,
    collector,  # noqa: ANN001
) -> None:
    ctx = make_client(**atna_settings(collector)).app.state.context
    first, second = (Sender(ctx.sessions, ctx.settings, ctx.clock) for _ in range(2))
    record_sample(ctx, "staff.signed_in")
    assert first.run_once() == 1
    record_sample(ctx, "staff.signed_in")
    assert second.run_once() == 0  # the first holds the lease
    first.stop()
    assert second.run_once() == 1
    second.stop()
    assert len(collector.wait_for(2)) == 2
