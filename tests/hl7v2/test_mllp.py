"""``send`` against a real MLLP listener (tests/peers/mllp.py): ACKs, NAKs, outages, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from pacsbridge.errors import Hl7Rejected, PeerError, PeerUnavailable
from pacsbridge.hl7v2 import (
    Ack,
    ArchivedStudy,
    MessageIds,
    OrderRef,
    PatientRef,
    build_merge,
    build_order_archived,
    send,
)
from peers.mllp import MllpListener, Reply, ack_for

Listen = Callable[..., MllpListener]

IDS = MessageIds("PB0000000042", datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "PACSBRIDGE", "AO17")
RIS_PATIENT = PatientRef("RIS123", "AO17", "D'ANGELO", "NICOLÒ", date(1974, 1, 1), "M")
EXTERNAL = PatientRef("EXT9", "OSPEXT", "DANGELO", "NICOLO", date(1974, 1, 1), "M")
ORDER = OrderRef("ORD-1", "ACC1", "TC TORACE")


def merge_message(control_id: str = IDS.control_id) -> str:
    return build_merge(replace(IDS, control_id=control_id), RIS_PATIENT, EXTERNAL)


def order_message() -> str:
    return build_order_archived(IDS, RIS_PATIENT, ORDER, [ArchivedStudy("1.2.3", 4)])


def send_to(listener: MllpListener, message: str, **options: Any) -> Ack:
    return send(listener.host, listener.port, message, **options)


def test_send_returns_the_accepting_ack(mllp_listener: Listen) -> None:
    ris = mllp_listener()
    ack = send_to(ris, order_message())
    assert (ack.code, ack.control_id) == ("AA", "PB0000000042")
    assert [r.message_type for r in ris.received] == ["OMI^O23^OMI_O23"]


def test_send_from_a_thread_running_an_event_loop_still_delivers(mllp_listener: Listen) -> None:
    """As inside an embedding application, or a test driving Playwright's sync API."""
    ris = mllp_listener()

    async def inside_a_loop() -> Ack:
        return send_to(ris, order_message())  # blocking on purpose: what the caller does

    ack = asyncio.run(inside_a_loop())
    assert (ack.code, ack.control_id) == ("AA", "PB0000000042")
    assert len(ris.received) == 1


def test_latin1_names_arrive_intact(mllp_listener: Listen) -> None:
    pacs = mllp_listener()
    send_to(pacs, merge_message(), peer="PACS")
    (received,) = pacs.received
    assert received.get("PID.F5.R1.C1") == "D'ANGELO"
    assert received.get("PID.F5.R1.C2") == "NICOLÒ"
    assert "D'ANGELO^NICOLÒ" in received.raw


@pytest.mark.parametrize("code", ["AE", "AR", "CE", "CR"])
def test_negative_ack_is_rejected_with_its_text(mllp_listener: Listen, code: str) -> None:
    ris = mllp_listener()
    ris.script(Reply.ack(code, "Ordine ORD-1 già chiuso"))
    with pytest.raises(Hl7Rejected) as caught:
        send_to(ris, order_message())
    assert caught.value.params == {"peer": "RIS", "reason": "Ordine ORD-1 già chiuso"}
    assert not caught.value.retriable
    assert len(ris.received) == 1


def test_commit_accept_is_accepted(mllp_listener: Listen) -> None:
    ris = mllp_listener()
    ris.script(Reply.ack("CA"))
    assert send_to(ris, order_message()).accepted


def test_listener_down_is_unavailable(mllp_listener: Listen) -> None:
    pacs = mllp_listener(start=False)
    with pytest.raises(PeerUnavailable) as caught:
        send_to(pacs, merge_message(), peer="PACS")
    assert caught.value.retriable
    assert caught.value.params == {"peer": "PACS"}


def test_down_then_up_delivers_once(mllp_listener: Listen) -> None:
    """The retry is the caller's: two calls, one delivery, the same control id."""
    pacs = mllp_listener(start=False)
    with pytest.raises(PeerUnavailable):
        send_to(pacs, merge_message())
    pacs.start()
    assert send_to(pacs, merge_message()).code == "AA"
    assert pacs.control_ids == ["PB0000000042"]


def test_hang_up_without_ack_is_unavailable_and_the_resend_keeps_the_control_id(
    mllp_listener: Listen,
) -> None:
    ris = mllp_listener()
    ris.script(Reply.drop())
    with pytest.raises(PeerUnavailable, match="without an ACK"):
        send_to(ris, order_message())
    send_to(ris, order_message())
    assert ris.control_ids == ["PB0000000042", "PB0000000042"]
    assert ris.received[0].raw == ris.received[1].raw


def test_no_ack_in_time_is_unavailable(mllp_listener: Listen) -> None:
    ris = mllp_listener()
    ris.script(Reply.silent())
    started = time.monotonic()
    with pytest.raises(PeerUnavailable, match="no ACK within 0.3 s"):
        send_to(ris, order_message(), timeout=0.3)
    assert time.monotonic() - started < 5


def test_ack_for_another_message_is_an_error(mllp_listener: Listen) -> None:
    ris = mllp_listener()
    ris.script(Reply.ack(control_id="SOMEONE-ELSE"))
    with pytest.raises(PeerError, match="SOMEONE-ELSE") as caught:
        send_to(ris, order_message())
    assert type(caught.value) is PeerError
    assert not caught.value.retriable


def test_stopped_listener_is_unavailable(mllp_listener: Listen) -> None:
    pacs = mllp_listener()
    send_to(pacs, merge_message())
    pacs.stop()
    with pytest.raises(PeerUnavailable):
        send_to(pacs, merge_message())


def test_send_is_safe_from_worker_threads(mllp_listener: Listen) -> None:
    pacs = mllp_listener()
    control_ids = [f"PB{n:010d}" for n in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        acks = list(pool.map(lambda c: send_to(pacs, merge_message(c)), control_ids))
    assert [ack.control_id for ack in acks] == control_ids
    assert sorted(pacs.control_ids) == control_ids


def test_listener_acks_are_valid_v25(mllp_listener: Listen) -> None:
    """The test peer answers like a conformant receiver, so read_ack is tested on real ACKs."""
    pacs = mllp_listener()
    send_to(pacs, merge_message())
    for reply in (Reply.ack(), Reply.error("Paziente sconosciuto")):
        answer = ack_for(pacs.received[0], reply)
        parsed = parse_message(answer, validation_level=VALIDATION_LEVEL.STRICT)
        parsed.validate()
