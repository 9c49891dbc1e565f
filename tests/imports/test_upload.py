"""Resumable upload: whole body, parts, wrong offsets, resume, limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from conftest import bearer, launch
from imports.helpers import upload, zip_folder
from pacsbridge.demo.samples import SampleStudy, write_cd
from pacsbridge.imports import workspace


def _archive(tmp_path):
    write_cd(tmp_path / "cd", [SampleStudy(series_count=1, instances_per_series=2)])
    return zip_folder(tmp_path / "cd")


def test_whole_body_upload_starts_the_analysis(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    document = upload(client, token, _archive(tmp_path))
    assert document["state"] == "awaiting_confirmation"
    assert document["received_bytes"] == document["archive_size"] > 0


def test_parts_in_order_assemble_the_archive(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    body = _archive(tmp_path)
    document = upload(client, token, body, part=4096)
    assert document["state"] == "awaiting_confirmation"
    assert document["archive_size"] == len(body)


def test_wrong_offset_is_409_with_the_stored_length(make_client, tmp_path):
    """A part from ahead whose predecessor never comes is refused after its wait."""
    client = make_client(upload={"part_wait_seconds": 0.3})
    token = launch(client)
    body = _archive(tmp_path)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    url = f"/api/v1/imports/{import_id}/archive"
    first = {**bearer(token), "Content-Range": f"bytes 0-999/{len(body)}"}
    assert client.put(url, content=body[:1000], headers=first).status_code == 200
    skip = {**bearer(token), "Content-Range": f"bytes 2000-2999/{len(body)}"}
    answer = client.put(url, content=body[2000:3000], headers=skip)
    assert answer.status_code == 409
    assert answer.json()["error"]["received_bytes"] == 1000
    assert client.get(url, headers=bearer(token)).json()["received_bytes"] == 1000


def test_part_before_the_stored_length_is_409_at_once(make_client, tmp_path):
    client = make_client()  # waits 30 s for a predecessor: this part must not wait at all
    token = launch(client)
    body = _archive(tmp_path)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    url = f"/api/v1/imports/{import_id}/archive"
    first = {**bearer(token), "Content-Range": f"bytes 0-1999/{len(body)}"}
    assert client.put(url, content=body[:2000], headers=first).status_code == 200
    started = time.monotonic()
    again = {**bearer(token), "Content-Range": f"bytes 1000-2999/{len(body)}"}
    answer = client.put(url, content=body[1000:3000], headers=again)
    assert answer.status_code == 409 and answer.json()["error"]["received_bytes"] == 2000
    assert time.monotonic() - started < 5


def test_part_sent_ahead_waits_for_the_one_before_and_both_land_in_order(make_client, tmp_path):
    """Two parts in flight, the second one first: it waits; the archive is whole and exact."""
    client = make_client()
    token = launch(client)
    body = _archive(tmp_path)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    url = f"/api/v1/imports/{import_id}/archive"
    half = len(body) // 2

    def put(start: int, end: int) -> int:
        headers = {**bearer(token), "Content-Range": f"bytes {start}-{end - 1}/{len(body)}"}
        return client.put(url, content=body[start:end], headers=headers).status_code

    with client, ThreadPoolExecutor(2) as pool:  # one event loop for both, as in uvicorn
        ahead = pool.submit(put, half, len(body))
        time.sleep(0.5)  # the second part is waiting on the server before the first is sent
        assert not ahead.done()
        assert put(0, half) == 200
        assert ahead.result(timeout=30) == 200
    document = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()
    assert document["archive_size"] == document["received_bytes"] == len(body)
    ctx = client.app.state.context
    archive = workspace.archive_path(ctx.data_dir, import_id)
    if archive.exists():  # the analysis may already have consumed it
        assert archive.read_bytes() == body
    else:
        assert document["state"] in ("analysing", "awaiting_confirmation")


def test_interrupted_upload_resumes_where_it_stopped(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    body = _archive(tmp_path)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    url = f"/api/v1/imports/{import_id}/archive"
    # The client announced a 4 KiB part but the connection dropped after 1,500 bytes.
    assert len(body) > 4096
    headers = {**bearer(token), "Content-Range": f"bytes 0-4095/{len(body)}"}
    client.put(url, content=body[:1500], headers=headers)
    received = client.get(url, headers=bearer(token)).json()["received_bytes"]
    assert received == 1500
    rest = {**bearer(token), "Content-Range": f"bytes {received}-{len(body) - 1}/{len(body)}"}
    assert client.put(url, content=body[received:], headers=rest).status_code == 200
    state = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()["state"]
    assert state == "awaiting_confirmation"


def test_archive_over_the_limit_is_refused_before_writing(make_client, tmp_path):
    client = make_client(upload={"max_archive_bytes": 1000})
    token = launch(client)
    body = _archive(tmp_path)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    headers = {**bearer(token), "Content-Range": f"bytes 0-99/{len(body)}"}
    answer = client.put(f"/api/v1/imports/{import_id}/archive", content=body[:100], headers=headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "archive_too_large"
    ctx = client.app.state.context
    assert not workspace.archive_path(ctx.data_dir, import_id).exists()


def test_upload_after_analysis_is_a_conflict(make_client, tmp_path):
    client = make_client()
    token = launch(client)
    document = upload(client, token, _archive(tmp_path))
    answer = client.put(
        f"/api/v1/imports/{document['id']}/archive", content=b"x", headers=bearer(token)
    )
    assert answer.status_code == 409


def test_bad_content_range_is_422(make_client):
    client = make_client()
    token = launch(client)
    import_id = client.post("/api/v1/imports", headers=bearer(token)).json()["id"]
    headers = {**bearer(token), "Content-Range": "bytes 10-5/100"}
    answer = client.put(f"/api/v1/imports/{import_id}/archive", content=b"x" * 6, headers=headers)
    assert answer.status_code == 422
