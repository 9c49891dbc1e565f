"""The receiver's checks hold on both receive paths (``dicom.fast_receive`` on and off).

On the fast path the decision to write comes from the command alone (caller, UID, expected
list) and every check of the whole data set still runs before the file is moved into place.
Real retrievals from dcmqrscp, with forged C-STOREs from another process during the move.
"""

from __future__ import annotations

from typing import Any

import pytest

from pacsbridge.retrievals import cache

from .test_intruders import (
    NOT_AUTHORISED,
    _during_the_move,
    _forge,
    _forged_copy,
    _intruder_events,
    _no_image_level_retrieval,
)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "slow"])
def test_another_patients_instance_is_refused_on_both_receive_paths(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch, tmp_path, fast: bool
) -> None:  # noqa: ANN001
    answers: list[dict[str, Any]] = []

    def intrude(gateway, paths) -> None:  # noqa: ANN001
        forged = _forged_copy(paths[0], tmp_path / "forged.dcm", PatientID="OTHER-7")
        answers.append(_forge(gateway, tmp_path, [forged]))

    def gateway_for(peer, **options):  # noqa: ANN001, ANN003, ANN202
        return make_gateway(peer, dicom={"fast_receive": fast}, **options)

    gateway, retrieval_id, _study, paths = _no_image_level_retrieval(
        gateway_for, dcmqrscp_pacs, load_study, monkeypatch, intrude
    )

    assert gateway.ctx.listener.scp.local.fast_receive is fast
    assert answers == [{"associated": True, "rejected": False, "statuses": [NOT_AUTHORISED]}]
    [event] = _intruder_events(gateway)
    assert event.details["reason"] == "patient_id_differs"  # read from the whole data set
    document = gateway.document(retrieval_id)
    assert document["state"] == "available", document
    assert document["received_instances"] == len(paths)
    studies = cache.root(gateway.ctx) / "studies"
    assert not list(studies.rglob(f"*{cache.PART}"))


def test_an_unlisted_instance_is_refused_from_its_command_before_any_data_is_written(
    make_gateway, dcmqrscp_pacs, load_study, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    study, paths = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(dcmqrscp_pacs.peer)  # IMAGE-level lists: admission by UID
    answers: list[dict[str, Any]] = []
    forged = _forged_copy(paths[0], tmp_path / "unlisted.dcm")  # same study, a new UID
    _during_the_move(monkeypatch, lambda: answers.append(_forge(gateway, tmp_path, [forged])))
    retrieval_id = gateway.request([study.accession_number])
    gateway.run()

    assert gateway.document(retrieval_id)["state"] == "available"
    assert [a["statuses"] for a in answers] == [[NOT_AUTHORISED]]
    [event] = _intruder_events(gateway)
    assert event.details["reason"] == "not_expected"
    assert "patient_id" not in event.details  # decided on the command: the data set unread
    written = list((cache.root(gateway.ctx) / "studies").rglob("*"))
    assert len([p for p in written if p.suffix == cache.SUFFIX]) == len(paths)
    assert not [p for p in written if p.name.endswith(cache.PART)]
