"""Fixtures of the page tests: a live server, the demo PACS, headless Debian Chromium.

Playwright drives ``/usr/bin/chromium`` and never downloads a browser of its own. A missing
Chromium fails loudly with the install command. Screenshots of each
page go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LAUNCH_BODY, RIS_KEY, deep_merge
from pacsbridge.demo.pacs import DemoPacs
from pacsbridge.settings import Settings

from .live import LiveServer, free_port

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="session")
def demo_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPacs]:
    """pynetdicom's qrscp on a free port: the real PACS the pipeline stores into."""
    pacs = DemoPacs(folder=tmp_path_factory.mktemp("demo-pacs"), port=free_port())
    pacs.start()
    yield pacs
    pacs.stop()


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with test settings (+ overrides); small upload parts to get many PUTs."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        base = {"web": {"host": "127.0.0.1", "port": free_port()}, "upload": {"part_bytes": 4096}}
        server = LiveServer(make_settings(**deep_merge(base, overrides))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_with_pacs(
    live: Callable[..., LiveServer], demo_pacs: DemoPacs
) -> Callable[..., LiveServer]:
    def start(**overrides: Any) -> LiveServer:
        pacs = {
            "pacs": {"ae_title": demo_pacs.ae_title, "host": "127.0.0.1", "port": demo_pacs.port}
        }
        return live(**deep_merge(pacs, overrides))

    return start


def launch_url(server: LiveServer, body: dict[str, Any] | None = None) -> str:
    """POST /api/v1/launch as the RIS does; the launch link."""
    answer = httpx.post(
        f"{server.url}/api/v1/launch",
        json=body or LAUNCH_BODY,
        headers={"Authorization": f"Bearer {RIS_KEY}"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["url"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def browser_tab(browser: Any, locale: str) -> Iterator[Any]:
    """A fresh browser context in ``locale`` (its Accept-Language); JavaScript errors fail the
    test that used it."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh Italian browser context; JavaScript errors fail the test."""
    yield from browser_tab(browser, "it-IT")


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
