"""What a retrieval adds to /metrics: instances and bytes received, move durations, failed
C-MOVEs by source and status, the cache's size. Each test compares scrapes before and after."""

from __future__ import annotations

from pathlib import Path

from conftest import sample, scrape

from .conftest import SOURCE

RECEIVED = "pacsbridge_instances_received_total"
MOVES = "pacsbridge_retrieval_move_duration_seconds_count"


def test_a_retrieval_counts_instances_and_bytes_received_and_the_cache(
    make_gateway, dcmqrscp_pacs, load_study
) -> None:  # noqa: ANN001
    study, files = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=3)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    before = scrape(gateway.client)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    assert gateway.document(retrieval_id)["state"] == "available"
    after = scrape(gateway.client)
    assert sample(after, RECEIVED, source=SOURCE) - sample(before, RECEIVED, source=SOURCE) == 3
    received_bytes = sample(after, "pacsbridge_bytes_received_total", source=SOURCE) - sample(
        before, "pacsbridge_bytes_received_total", source=SOURCE
    )
    assert received_bytes >= sum(Path(f).stat().st_size for f in files) * 0.9
    labels = {"source": SOURCE, "outcome": "complete"}
    assert sample(after, MOVES, **labels) - sample(before, MOVES, **labels) == 1
    assert sample(after, "pacsbridge_retrievals", state="available") == 1
    assert sample(after, "pacsbridge_cache_studies") == 1
    assert sample(after, "pacsbridge_cache_bytes") > 0


def test_a_move_refused_by_the_source_counts_with_its_status(
    make_gateway, pacs_factory, load_study
) -> None:  # noqa: ANN001
    pacs = pacs_factory("dcmqrscp", move_destinations={})  # our AE is unknown to it: A801
    study, _ = load_study(pacs, series_count=1, instances_per_series=1)
    gateway = make_gateway(pacs.peer, fse={"attempts": 1})
    before = scrape(gateway.client)

    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    assert gateway.document(retrieval_id)["state"] == "failed"
    after = scrape(gateway.client)
    labels = {"peer": SOURCE, "status": "0xA801"}
    failures = "pacsbridge_move_failures_total"
    assert sample(after, failures, **labels) - sample(before, failures, **labels) == 1
    failed = {"source": SOURCE, "outcome": "failed"}
    assert sample(after, MOVES, **failed) - sample(before, MOVES, **failed) == 1
