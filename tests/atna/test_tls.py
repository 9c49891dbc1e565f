"""ATNA over TLS (RFC 5425) to rsyslog's gtls driver: our CA trusted, a foreign CA refused."""

from __future__ import annotations

import logging

from atna.collector import assert_valid, make_ca, xml_of
from atna.helpers import atna_settings, record_sample, send_all, spooled


def test_tls_delivers_to_a_collector_whose_certificate_our_ca_signed(
    make_client,
    tls_collector,
    test_ca,
    schema,  # noqa: ANN001
) -> None:
    settings = atna_settings(tls_collector, transport="tls", ca_file=str(test_ca.ca_file))
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
    tls_collector,
    tmp_path,
    caplog,  # noqa: ANN001
) -> None:
    foreign = make_ca(tmp_path / "foreign", name="Some Other CA")
    settings = atna_settings(tls_collector, transport="tls", ca_file=str(foreign.ca_file))
    ctx = make_client(**settings).app.state.context
    record_sample(ctx, "store.completed")

    with caplog.at_level(logging.WARNING, logger="pacsbridge.atna.sender"):
        assert send_all(ctx) == 0
    line = next(r.getMessage() for r in caplog.records if "ATNA collector" in r.getMessage())
    assert "(tls)" in line and "CERTIFICATE_VERIFY_FAILED" in line.upper().replace(" ", "_")
    assert "IOTELU1234" not in caplog.text
    assert spooled(ctx) == 1
    assert tls_collector.messages() == []
