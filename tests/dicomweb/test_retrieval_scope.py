"""A retrieval's viewer link through dicomweb-client: search, retrieve, metadata, refusals."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from pydicom import Dataset, dcmread
from requests import HTTPError
from sqlalchemy import select

from pacsbridge.audit import AuditEvent


def _by_sop(paths):  # noqa: ANN001, ANN202
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes() for p in paths}


def _raw_parts(client, url: str) -> list[bytes]:  # noqa: ANN001
    """The parts of a WADO-RS answer as bytes, split by dicomweb-client's own decoder."""
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    response = client._http_get(url, headers={"Accept": accept})
    return [bytes(part) for part in client._decode_multipart_message(response, stream=False)]


def _cached(scope):  # noqa: ANN001, ANN202
    """SOP Instance UID → bytes of every file in the server's cache (what our SCP stored)."""
    folder = scope.server.context.data_dir / "retrievals" / "studies"
    return _by_sop(sorted(folder.rglob("*.dcm")))


def test_search_finds_the_retrieved_study_its_series_and_instances(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=2, instances_per_series=3)
    study_uid = scope.document["studies"][0]["study_instance_uid"]
    client = scope.client()

    [study] = client.search_for_studies()
    found = Dataset.from_json(study)
    assert found.StudyInstanceUID == study_uid
    assert found.NumberOfStudyRelatedSeries == 2
    assert found.NumberOfStudyRelatedInstances == 6
    assert list(found.ModalitiesInStudy) == ["CT"] or found.ModalitiesInStudy == "CT"

    series = client.search_for_series(study_uid)
    assert [int(Dataset.from_json(s).SeriesNumber) for s in series] == [1, 2]
    first = Dataset.from_json(series[0]).SeriesInstanceUID
    instances = client.search_for_instances(study_uid, first)
    assert len(instances) == 3
    assert {Dataset.from_json(i).SOPInstanceUID for i in instances} <= set(_by_sop(scope.paths))


def test_match_keys_limit_and_offset_narrow_the_search(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=3, instances_per_series=2)
    study_uid = scope.document["studies"][0]["study_instance_uid"]
    client = scope.client()

    assert client.search_for_studies(search_filters={"PatientName": "ZZZ*"}) == []
    assert len(client.search_for_studies(search_filters={"PatientName": "test*"})) == 1
    assert len(client.search_for_studies(search_filters={"StudyDate": "20240101-20241231"})) == 1
    assert client.search_for_studies(search_filters={"StudyDate": "2025-"}) == []
    assert len(client.search_for_series(study_uid, search_filters={"SeriesNumber": "2"})) == 1
    page = client.search_for_series(study_uid, limit=2, offset=2)
    assert [int(Dataset.from_json(s).SeriesNumber) for s in page] == [3]
    [with_field] = client.search_for_studies(fields=["StudyDescription"])
    assert Dataset.from_json(with_field).StudyDescription == "TC TORACE"


def test_retrieved_instances_are_the_cached_files_byte_for_byte(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=2, instances_per_series=2)
    study_uid = scope.document["studies"][0]["study_instance_uid"]
    files = _cached(scope)
    assert set(files) == set(_by_sop(scope.paths))
    client = scope.client()

    parts = _raw_parts(client, f"{scope.root}/studies/{study_uid}")
    assert sorted(parts) == sorted(files.values())

    datasets = client.retrieve_study(study_uid)
    assert {str(ds.SOPInstanceUID) for ds in datasets} == set(files)
    ds = datasets[0]
    one = _raw_parts(
        client,
        f"{scope.root}/studies/{study_uid}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}",
    )
    assert one == [files[str(ds.SOPInstanceUID)]]


def test_metadata_is_the_files_headers_with_pixel_data_as_bulk_uri(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=2)
    study_uid = scope.document["studies"][0]["study_instance_uid"]
    client = scope.client()

    items = client.retrieve_study_metadata(study_uid)
    assert len(items) == 2
    for item in items:
        uri = item["7FE00010"]["BulkDataURI"]
        assert uri.startswith(scope.root + f"/studies/{study_uid}/series/")
        sop = item["00080018"]["Value"][0]
        path = next(p for p in scope.paths if str(dcmread(p).SOPInstanceUID) == sop)
        original = dcmread(path)
        assert Dataset.from_json({k: v for k, v in item.items() if k != "7FE00010"}) == Dataset(
            {k: v for k, v in original.items() if k != 0x7FE00010}
        )
        [pixels] = client.retrieve_bulkdata(uri)
        assert pixels == original.PixelData


def test_bearer_token_works_like_the_link(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=1)
    [study] = scope.bearer_client().search_for_studies()
    assert study["0020000D"]["Value"] == [scope.document["studies"][0]["study_instance_uid"]]


def test_links_of_the_fse_document_open_only_their_retrieval(retrieve) -> None:  # noqa: ANN001
    first = retrieve(series_count=1, instances_per_series=1)
    second = retrieve(series_count=1, instances_per_series=1)
    other_study = second.document["studies"][0]["study_instance_uid"]

    assert first.document["viewer_url"].startswith(f"{first.server.url}/viewer/")
    assert first.token != second.token
    with pytest.raises(HTTPError) as refused:
        first.client().search_for_series(other_study)
    assert refused.value.response.status_code == 404
    assert len(first.client().search_for_studies()) == 1


def test_forged_and_expired_links_are_refused_with_401(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=1)
    kind_and_id, expiry, signature = scope.token.split(".")
    later = str(int(expiry) + 86400)
    forged = f"{kind_and_id}.{later}.{signature}"
    answer = httpx.get(f"{scope.server.url}/dicomweb/t/{forged}/studies")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "viewer_link_invalid"

    scope.server.context.clock.advance(hours=25)  # type: ignore[attr-defined]
    answer = httpx.get(f"{scope.server.url}/dicomweb/t/{scope.token}/studies")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "viewer_link_expired"
    page = httpx.get(f"{scope.server.url}/viewer/{scope.token}")
    assert page.status_code == 401
    assert "scaduto" in page.text


def test_dicomweb_use_of_a_link_is_audited_once(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=1)
    client = scope.client()
    client.search_for_studies()
    client.search_for_studies()
    retrieval_id = scope.document["id"]
    with scope.server.context.sessions() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.kind == "images.viewed", AuditEvent.retrieval_id == retrieval_id
                )
            )
        )
    assert [e.details["via"] for e in events] == ["dicomweb"]
    assert events[0].actor == "viewer-link"
    [study] = scope.document["studies"]  # what its ATNA Instances Accessed names (docs/atna.md)
    assert events[0].details["study_instance_uids"] == [study["study_instance_uid"]]
    assert events[0].details["patient_id"]
    expires = datetime.fromisoformat(events[0].details["link_expires_at"])
    now = scope.server.context.clock.now()
    assert timedelta(hours=23) < expires - now <= timedelta(hours=24)


def test_every_answer_with_patient_data_is_no_store(retrieve) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=1)
    [study] = scope.document["studies"]
    [series] = study["series"]
    [instance] = series["instances"]
    base = (
        f"{scope.root}/studies/{study['study_instance_uid']}/series/"
        f"{series['series_instance_uid']}/instances/{instance['sop_instance_uid']}"
    )
    urls = [
        f"{scope.root}/studies",
        base,
        f"{base}/metadata",
        f"{base}/frames/1",
        f"{base}/rendered",
        f"{base}/thumbnail",
        scope.document["viewer_url"],
        f"{scope.server.url}/dicomweb/t/forged/studies",
    ]
    for url in urls:
        answer = httpx.get(url, follow_redirects=True)
        assert answer.headers["cache-control"] == "no-store", url
    fse = httpx.get(
        f"{scope.server.url}/api/v1/retrievals/{scope.document['id']}",
        headers={"Authorization": "Bearer test-fse-key"},
    )
    assert fse.headers["cache-control"] == "no-store"
