"""A paused source (support console): its retrievals wait in the queue, then complete on resume."""

from __future__ import annotations

import pytest

from pacsbridge.errors import NotFoundError
from pacsbridge.retrievals import pauses
from pacsbridge.retrievals.models import Retrieval


def test_a_retrieval_requested_while_its_source_is_paused_stays_queued_then_completes_on_resume(
    make_gateway,
    dcmqrscp_pacs,
    load_study,  # noqa: ANN001
) -> None:
    study, paths = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    pauses.pause(gateway.ctx, "ao17", actor="m.rossi", reason="PACS maintenance")

    retrieval_id = gateway.request([study.accession_number])
    assert gateway.run() >= 1  # the worker took the task and put it back to wait
    waiting = gateway.document(retrieval_id)
    assert waiting["state"] == "queued", waiting
    assert waiting["errors"] == []
    with gateway.ctx.sessions() as session:
        row = session.get_one(Retrieval, retrieval_id)
        assert row.attempts_left == gateway.ctx.settings.fse.attempts and row.retry_at is not None
    assert gateway.moves(study.study_instance_uid) == []  # no C-MOVE while paused
    assert gateway.events("retrieval.failed", retrieval_id) == []

    assert pauses.resume(gateway.ctx, "ao17", actor="m.rossi") == [retrieval_id]
    gateway.run()
    done = gateway.document(retrieval_id)
    assert done["state"] == "available", done
    assert done["received_instances"] == len(paths)
    [paused] = gateway.events("source.paused")
    [resumed] = gateway.events("source.resumed")
    assert paused.actor == resumed.actor == "m.rossi"
    assert paused.details["source"] == "ao17" and resumed.details["waiting"] == 1


def test_pausing_an_unknown_source_is_refused(make_gateway, dcmqrscp_pacs) -> None:  # noqa: ANN001
    gateway = make_gateway(dcmqrscp_pacs.peer)
    with pytest.raises(NotFoundError):
        pauses.pause(gateway.ctx, "nowhere", actor="m.rossi")
