"""The cache: hits without a C-MOVE, one C-MOVE for simultaneous requests, expiry, moved again."""

from __future__ import annotations

from pacsbridge.retrievals import cache

from .conftest import AUTH


def test_cached_study_is_answered_without_a_move(make_gateway, orthanc_pacs, load_study) -> None:  # noqa: ANN001
    study, paths = load_study(orthanc_pacs, series_count=1, instances_per_series=3)
    gateway = make_gateway(orthanc_pacs.peer)
    first = gateway.request([study.accession_number])
    gateway.run()
    assert gateway.document(first)["state"] == "available"

    again = gateway.post([study.accession_number])

    assert again.status_code == 202
    assert again.json()["state"] == "available"  # at once: nothing queued, nothing moved
    assert gateway.run() == 0
    document = gateway.document(again.json()["id"])
    assert document["cache_hit"] is True
    assert document["received_instances"] == len(paths)
    assert document["studies"][0]["from_cache"] is True
    assert len(gateway.moves(study.study_instance_uid)) == 1
    assert gateway.events("retrieval.cache_hit", again.json()["id"])
    package = gateway.client.get(f"/api/v1/retrievals/{again.json()['id']}/package", headers=AUTH)
    assert package.status_code == 200


def test_simultaneous_requests_share_one_move(make_gateway, dcmqrscp_pacs, load_study) -> None:  # noqa: ANN001
    study, paths = load_study(dcmqrscp_pacs, series_count=2, instances_per_series=5)
    gateway = make_gateway(dcmqrscp_pacs.peer)
    first = gateway.request([study.accession_number])
    second = gateway.request([study.accession_number], patient_id=study.patient.patient_id)

    assert gateway.run_in_parallel() == 2

    for retrieval_id in (first, second):
        document = gateway.document(retrieval_id)
        assert document["state"] == "available", document
        assert document["received_instances"] == len(paths)
    [move] = gateway.moves(study.study_instance_uid)
    assert move.details["level"] == "STUDY" and move.code == "0x0000"
    links = [gateway.document(r)["studies"] for r in (first, second)]
    assert [[s["study_instance_uid"] for s in link] for link in links] == [
        [study.study_instance_uid]
    ] * 2
    # both joined while the study was still being retrieved: shared, not a cache hit
    assert [link[0]["from_cache"] for link in links] == [False, False]


def test_expiry_deletes_and_a_new_request_retrieves_again(
    make_gateway, pynetdicom_pacs, load_study, clock
) -> None:  # noqa: ANN001
    study, paths = load_study(pynetdicom_pacs, series_count=1, instances_per_series=2)
    gateway = make_gateway(pynetdicom_pacs.peer, fse={"retention_days": 45})
    old = gateway.request([study.accession_number])
    gateway.run()
    url = f"/api/v1/retrievals/{old}/package"
    assert gateway.client.get(url, headers=AUTH).status_code == 200
    folder = cache.root(gateway.ctx) / "studies"
    assert len(list(folder.rglob("*.dcm"))) == len(paths)

    clock.advance(days=44)
    assert cache.expire(gateway.ctx) == []
    clock.advance(days=2)
    assert len(cache.expire(gateway.ctx)) == 1

    assert gateway.document(old)["state"] == "expired"
    assert list(folder.rglob("*.dcm")) == []
    assert not cache.package_path(gateway.ctx, old).exists()
    gone = gateway.client.get(url, headers=AUTH)
    assert gone.status_code == 409
    assert gone.json()["error"]["code"] == "conflict"
    [expired] = gateway.events("cache.expired")
    assert expired.details["study_instance_uid"] == study.study_instance_uid
    assert expired.details["retrievals"] == [old]

    again = gateway.post([study.accession_number])
    assert again.json()["state"] == "queued"  # not a cache hit any more
    gateway.run()
    document = gateway.document(again.json()["id"])
    assert document["state"] == "available"
    assert document["received_instances"] == len(paths)
    assert len(gateway.moves(study.study_instance_uid)) == 2  # retrieved again from the PACS


def test_an_entry_past_retention_is_not_served_before_the_job_runs(
    make_gateway, dcmqrscp_pacs, load_study, clock
) -> None:  # noqa: ANN001
    study, _ = load_study(dcmqrscp_pacs, series_count=1, instances_per_series=1)
    gateway = make_gateway(dcmqrscp_pacs.peer, fse={"retention_days": 1})
    first = gateway.request([study.accession_number])
    gateway.run()
    clock.advance(days=2)  # the periodic expiry has not run

    again = gateway.post([study.accession_number])

    assert again.json()["state"] == "queued"
    assert gateway.document(first)["state"] == "expired"
    gateway.run()
    assert gateway.document(again.json()["id"])["state"] == "available"
    assert len(gateway.moves(study.study_instance_uid)) == 2
