"""OHIF in headless Chromium on a clinician's link and on the operator's preview.

What is asserted is inside the viewport: the viewer's canvas read back, with pixels that are not
blank, and that change when the next slice is shown.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread

from pacsbridge.demo.samples import SampleStudy, write_loose
from web.conftest import CHROMIUM, launch_url, screenshot

pytestmark = pytest.mark.browser
#: Time allowed from opening the link to an image in the viewport.
FIRST_IMAGE_SECONDS = 30


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Any:
    """A fresh context that lets the page reach 127.0.0.1 only, as on a closed hospital
    network: any other request is aborted and recorded (``tab.outside``)."""
    context = browser.new_context(locale="it-IT", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.errors = []  # type: ignore[attr-defined]
    tab.outside = []  # type: ignore[attr-defined]
    tab.statuses = {}  # type: ignore[attr-defined]
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))  # type: ignore[attr-defined]
    tab.on("response", lambda r: tab.statuses.setdefault(r.status, []).append(r.url))  # type: ignore[attr-defined]
    context.route("**/*", lambda route: _only_local(route, tab.outside))  # type: ignore[attr-defined]
    yield tab
    context.close()


def _only_local(route: Any, outside: list[str]) -> None:
    url = route.request.url
    if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        outside.append(url)
        route.abort()


VIEWPORT = ".cornerstone-canvas"


def viewport_pixels(page: Any) -> np.ndarray | None:
    """What the viewer's canvas shows, as the screen shows it (WebGL keeps no readable buffer,
    so the canvas element itself is captured)."""
    canvas = page.locator(VIEWPORT).first
    if canvas.count() == 0 or not canvas.is_visible():
        return None
    image = Image.open(io.BytesIO(canvas.screenshot(animations="disabled")))
    return np.asarray(image.convert("RGB"))


def skip_tour(page: Any) -> None:
    """OHIF's first-visit tour covers the image; a clinician would skip it too."""
    skip = page.get_by_text("Skip all")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def wait_for_image(page: Any, seconds: float = FIRST_IMAGE_SECONDS) -> np.ndarray:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        skip_tour(page)
        pixels = viewport_pixels(page)
        if pixels is not None and int(pixels.max()) - int(pixels.min()) > 50:
            return pixels
        page.wait_for_timeout(200)
    screenshot(page, "viewer-no-image")
    raise AssertionError(f"no image in the viewport after {seconds} s: {page.errors}")


def bright_square_per_slice(paths: list[Path]) -> None:
    """Each slice a dark image with a bright square further right: slices differ visibly."""
    for path in paths:
        ds = dcmread(path)
        number = int(ds.InstanceNumber)
        pixels = np.full((ds.Rows, ds.Columns), 200, dtype="<u2")
        side = ds.Columns // 8
        pixels[side : 3 * side, number * side : (number + 2) * side] = 3800
        ds.PixelData = pixels.tobytes()
        ds.save_as(path)


def bright_columns(pixels: np.ndarray) -> np.ndarray:
    """Which columns of the viewport hold the bright square."""
    grey = pixels.mean(axis=2)
    return np.flatnonzero((grey > 200).sum(axis=0) > grey.shape[0] // 10)  # not the overlay text


def test_clinician_link_shows_the_ct_and_scrolling_changes_the_slice(retrieve, page) -> None:  # noqa: ANN001
    scope = retrieve(
        bright_square_per_slice, series_count=1, instances_per_series=4, rows=128, columns=128
    )
    started = time.monotonic()
    page.goto(scope.document["viewer_url"])
    first = wait_for_image(page)
    elapsed = time.monotonic() - started
    skip_tour(page)
    page.wait_for_timeout(300)
    first = viewport_pixels(page)
    screenshot(page, "viewer-clinician")
    assert bright_columns(first).size > 0, "the first slice's bright square is not shown"

    page.locator(VIEWPORT).first.hover()
    page.mouse.wheel(0, 120)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = viewport_pixels(page)
        moved = after is not None and bright_columns(after).size > 0
        if moved and bright_columns(after).min() > bright_columns(first).min():
            break
        page.wait_for_timeout(200)
    else:
        screenshot(page, "viewer-not-scrolled")
        raise AssertionError("scrolling did not show the next slice")
    screenshot(page, "viewer-clinician-scrolled")
    assert elapsed < FIRST_IMAGE_SECONDS
    assert page.outside == [], "the viewer tried to reach beyond our server"
    assert not page.errors, page.errors


def test_operator_preview_shows_the_uploaded_media(upload_media, page, tmp_path) -> None:  # noqa: ANN001
    study = SampleStudy(series_count=2, instances_per_series=3, rows=128, columns=128)
    paths = write_loose(tmp_path / "cd", [study], junk=False)
    bright_square_per_slice(paths)
    scope = upload_media(tmp_path / "cd")
    import_id = scope.document["id"]
    page.goto(launch_url(scope.server))  # the RIS link: the page session's cookie
    page.goto(f"{scope.server.url}/imports/{import_id}/confirm")
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Visualizza immagini").click()
    viewer = opened.value
    viewer.errors = []
    viewer.on("pageerror", lambda error: viewer.errors.append(str(error)))
    viewer.wait_for_url(f"**/viewer/i{import_id}.*/viewer?StudyInstanceUIDs=*")
    pixels = wait_for_image(viewer)
    skip_tour(viewer)
    screenshot(viewer, "viewer-operator-preview")
    assert bright_columns(pixels).size > 0
    assert page.outside == []
    assert not viewer.errors, viewer.errors


def test_expired_link_shows_an_italian_page(retrieve, page) -> None:  # noqa: ANN001
    scope = retrieve(series_count=1, instances_per_series=1)
    scope.server.context.clock.advance(hours=25)  # type: ignore[attr-defined]
    page.goto(scope.document["viewer_url"])
    screenshot(page, "viewer-link-expired")
    assert "Il link per vedere le immagini è scaduto" in page.locator("#error-message").inner_text()
    assert page.locator(VIEWPORT).count() == 0


def test_a_link_does_not_open_another_retrievals_study(retrieve, page) -> None:  # noqa: ANN001
    mine = retrieve(series_count=1, instances_per_series=1)
    other = retrieve(series_count=1, instances_per_series=1)
    other_study = other.document["studies"][0]["study_instance_uid"]
    url = f"{mine.server.url}/viewer/{mine.token}/viewer?StudyInstanceUIDs={other_study}"
    page.goto(url)
    page.wait_for_timeout(3000)
    screenshot(page, "viewer-other-retrieval")
    refused = [u for u in page.statuses.get(404, []) if other_study in u]
    assert refused, "the other retrieval's study was not refused"
    served = [u for u in page.statuses.get(200, []) if f"/studies/{other_study}/" in u]
    assert served == [], "something of the other retrieval's study was served"
    assert page.url.endswith("/notfoundstudy")  # OHIF's own "study not found" screen
    pixels = viewport_pixels(page)
    assert pixels is None or int(pixels.max()) - int(pixels.min()) <= 50
