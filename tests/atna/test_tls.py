"""ATNA over TLS (RFC 5425) to rsyslog's gtls driver: the test CA (tests/peers/pki.py) trusted,
a collector whose certificate another CA signed refused."""

from __future__ import annotations

import logging

from atna.collector import Rsyslog, assert_valid, xml_of
from atna.helpers import atna_settings, record_sample, send_all, spooled
from pacsbridge import checks
from peers.pki import Pki


def test_tls_delivers_to_a_collector_whose_certificate_our_ca_signed(
    make_client,
    tls_collector,
    pki: Pki,
    schema,  # noqa: ANN001
) -> None:
    settings = atna_settings(tls_collector, transport="tls", ca_file=str(pki.ca_certificates))
    ctx = make_client(**settings).app.state.context
    record_sample(ctx, "store.completed")
    record_sample(ctx, "staff.signed_in")

    assert send_all(ctx) == 2
    received = tls_collector.wait_for(2)
    assert len(received) == 2
    for message in received:
        assert_valid(schema, xml_of(message))
    assert spooled(ctx) == 0


def test_a_collector_signed_by_another_ca_is_refused_with_a_clear_log_line_and_kept(
    make_client,
    pki: Pki,
    tmp_path,
    caplog,  # noqa: ANN001
) -> None:
    foreign = Rsyslog(tmp_path / "foreign", tls=pki.issue("rsyslog", untrusted=True))
    foreign.start()
    try:
        settings = atna_settings(foreign, transport="tls", ca_file=str(pki.ca_certificates))
        ctx = make_client(**settings).app.state.context
        record_sample(ctx, "store.completed")

        with caplog.at_level(logging.WARNING, logger="pacsbridge.atna.sender"):
            assert send_all(ctx) == 0
        received = foreign.messages()
    finally:
        foreign.stop()
    line = next(r.getMessage() for r in caplog.records if "ATNA collector" in r.getMessage())
    assert "(tls)" in line and "CERTIFICATE_VERIFY_FAILED" in line.upper().replace(" ", "_")
    assert "IOTELU1234" not in caplog.text
    assert spooled(ctx) == 1
    assert received == []


def test_a_collector_that_asks_for_our_certificate_gets_the_configured_one(
    make_client,
    tmp_path,
    pki: Pki,
    schema,  # noqa: ANN001
) -> None:
    collector = Rsyslog(tmp_path / "mutual", tls=pki.issue("rsyslog"), client_certificates=True)
    collector.start()
    ca_file = str(pki.ca_certificates)
    try:
        anonymous = atna_settings(collector, transport="tls", ca_file=ca_file)
        refused = make_client(**anonymous).app.state.context
        record_sample(refused, "staff.signed_in")
        assert send_all(refused) == 0  # rsyslog refuses a sender without a certificate
        assert spooled(refused) == 1 and collector.messages() == []
        client = pki.issue("pacsbridge")
        ours = {"cert_file": str(client.certificate), "key_file": str(client.private_key)}
        ctx = make_client(
            **atna_settings(collector, transport="tls", ca_file=ca_file, **ours)
        ).app.state.context
        record_sample(ctx, "staff.signed_in")
        assert send_all(ctx) == 2  # the same database: the refused message left too
        received = collector.wait_for(2)
    finally:
        collector.stop()
    assert len(received) == 2
    for message in received:
        assert_valid(schema, xml_of(message))


def test_pacsbridge_check_passes_a_trusted_collector_and_names_a_refused_certificate(
    make_settings,
    tls_collector,
    pki: Pki,
    tmp_path,  # noqa: ANN001
) -> None:
    trusted = make_settings(
        **atna_settings(tls_collector, transport="tls", ca_file=str(pki.ca_certificates))
    )
    name, ok, detail = checks.atna_collector(trusted)
    assert (name, ok) == ("ATNA collector", True), detail
    assert "atna collector" in [n.lower() for n, _, _ in checks.run_all(trusted)]

    foreign = Rsyslog(tmp_path / "foreign", tls=pki.issue("rsyslog", untrusted=True))
    foreign.start()
    try:
        refused = make_settings(
            **atna_settings(foreign, transport="tls", ca_file=str(pki.ca_certificates))
        )
        name, ok, detail = checks.atna_collector(refused)
    finally:
        foreign.stop()
    assert not ok
    assert "CERTIFICATE_VERIFY_FAILED" in detail.upper().replace(" ", "_"), detail


def test_pacsbridge_check_warns_that_a_tcp_collector_receives_in_clear(
    make_settings,
    collector,  # noqa: ANN001
) -> None:
    name, ok, detail = checks.atna_collector(make_settings(**atna_settings(collector)))
    assert ok, detail
    assert "in clear" in detail
    collector.stop()
    name, ok, detail = checks.atna_collector(make_settings(**atna_settings(collector)))
    assert not ok and f"127.0.0.1:{collector.port} (tcp)" in detail
