"""GET /imports/{id}/thumbnails/{series_key}.png through the app: budget setting and disk cache."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from conftest import launch
from imports.helpers import upload, zip_folder
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_cd
from pacsbridge.imports import workspace
from pacsbridge.media.thumbnails import placeholder_png

MATCHING = SamplePatient(name="TEST^TEST", patient_id="EXT1", birth_date="19740101", sex="M")


def thumbnail_urls(client: Any, tmp_path: Path) -> tuple[int, list[str]]:
    """Launch, upload a two-series CD, and read the thumbnail addresses off the page."""
    token = launch(client)
    client.get(f"/imports/start?token={token}")
    write_cd(tmp_path / "cd", [SampleStudy(patient=MATCHING, series_count=2)])
    import_id = upload(client, token, zip_folder(tmp_path / "cd"))["id"]
    page = client.get(f"/imports/{import_id}/confirm").text
    return import_id, re.findall(r'src="(/imports/\d+/thumbnails/[0-9a-f]{16}\.png)"', page)


def test_previews_are_cached_on_disk_under_our_keys(make_client: Any, tmp_path: Path) -> None:
    client = make_client()
    import_id, urls = thumbnail_urls(client, tmp_path)
    assert len(urls) == 2
    first = [client.get(url).content for url in urls]
    ctx = client.app.state.context
    cache = workspace.folder(ctx.data_dir, import_id) / "thumbnails"
    assert sorted(p.name for p in cache.iterdir()) == sorted(u.rsplit("/", 1)[1] for u in urls)
    shutil.rmtree(workspace.files_dir(ctx.data_dir, import_id))  # the cache alone answers now

    again = [client.get(url).content for url in urls]

    assert again == first and placeholder_png() not in again


def test_frame_over_the_configured_budget_gets_the_placeholder(
    make_client: Any, tmp_path: Path
) -> None:
    client = make_client(imports={"thumbnail_max_pixels": 16})  # sample frames are 64 x 64
    _, urls = thumbnail_urls(client, tmp_path)

    assert [client.get(url).content for url in urls] == [placeholder_png()] * 2
