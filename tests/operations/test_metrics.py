"""/metrics: who may scrape it, the gauges read from the database, and multiprocess mode with
two real ``pacsbridge serve`` processes summing into one answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import METRICS_TOKEN, bearer, launch, sample, scrape
from peers.dicom import free_port

ROUTE = "/api/v1/retrievals/{retrieval_id}"


def test_metrics_is_404_without_a_token_outside_the_allowed_networks(make_client) -> None:  # noqa: ANN001
    client = make_client()  # the test client's address, "testclient", is in no network

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 404
    answer = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert answer.status_code == 200 and "pacsbridge_imports" in answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")


def test_metrics_answers_a_client_in_an_allowed_network_without_a_token(
    make_settings,  # noqa: ANN001
) -> None:
    from pacsbridge import runtime

    settings = make_settings(metrics={"allowed_networks": ["10.0.0.0/8"]})
    app = runtime.build(settings).app()
    inside = TestClient(app, client=("10.1.2.3", 50000))
    outside = TestClient(app, client=("192.168.1.9", 50000))

    assert inside.get("/metrics").status_code == 200
    assert outside.get("/metrics").status_code == 404


def test_imports_and_retrievals_by_state_queue_and_disk_are_read_at_scrape_time(
    make_client,  # noqa: ANN001
) -> None:
    client = make_client(jobs={"backend": "sqlite"})
    token = launch(client)
    created = client.post("/api/v1/imports", headers=bearer(token), json={"size": 10})
    assert created.status_code == 201, created.text

    text = scrape(client)

    assert sample(text, "pacsbridge_imports", state="created") == 1
    assert sample(text, "pacsbridge_imports", state="completed") == 0  # every state, 0 too
    assert sample(text, "pacsbridge_retrievals", state="queued") == 0
    assert sample(text, "pacsbridge_database_up") == 1
    assert sample(text, "pacsbridge_queue_depth", kind="pending") >= 0
    assert 'pacsbridge_queue_depth{kind="scheduled"}' in text
    assert sample(text, "pacsbridge_data_disk_bytes", kind="free") > 0
    assert sample(text, "pacsbridge_cache_studies") == 0


def test_requests_are_counted_by_route_template_never_by_path(make_client) -> None:  # noqa: ANN001
    client = make_client()
    for _ in range(2):
        assert client.get("/api/v1/retrievals/424242").status_code == 401
    before = sample(scrape(client), "pacsbridge_http_requests_total", route=ROUTE, status="401")
    client.get("/api/v1/retrievals/424242")

    text = scrape(client)
    after = sample(text, "pacsbridge_http_requests_total", route=ROUTE, status="401")
    assert after == before + 1
    assert "424242" not in text


def test_unknown_methods_share_one_label_so_a_client_cannot_grow_the_series(make_client) -> None:  # noqa: ANN001
    client = make_client()
    name, labels = "pacsbridge_http_requests_total", {"route": "/healthz", "method": "OTHER"}
    before = sample(scrape(client), name, **labels)  # counters are process-wide
    for method in ("BREW", "PROPFIND", "X-ROSSI"):
        client.request(method, "/healthz")

    text = scrape(client)

    assert sample(text, name, **labels) == before + 3
    assert "BREW" not in text and "X-ROSSI" not in text


# --- Multiprocess mode: two real processes, one directory, one sum ---------------------------


class Serve:
    """``pacsbridge serve --no-embedded-worker`` in a child process, with its own data folder."""

    def __init__(self, folder: Path, metrics_dir: Path) -> None:
        folder.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = folder / "pacsbridge.toml"
        config.write_text(
            f'[storage]\ndata_dir = "{folder / "data"}"\n'
            f'[web]\nhost = "127.0.0.1"\nport = {self.port}\n'
            '[fse]\napi_keys = ["k"]\n[jobs]\nbackend = "sqlite"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        self.log = (folder / "serve.log").open("wb")
        argv = [sys.executable, "-m", "pacsbridge", "serve", "--no-embedded-worker"]
        self.popen = subprocess.Popen(
            [*argv, "--config", str(config)], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, "pacsbridge serve exited"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        pytest.fail("pacsbridge serve did not answer /healthz")

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.log.close()


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Serve, Serve, Path]]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()  # as systemd's RuntimeDirectory= makes it, empty, before the processes
    nodes = (Serve(tmp_path / "a", metrics_dir), Serve(tmp_path / "b", metrics_dir))
    try:
        for node in nodes:
            node.wait_ready()
        yield nodes[0], nodes[1], metrics_dir
    finally:
        for node in nodes:
            node.stop()


def test_with_two_processes_each_metrics_answer_sums_both(two_processes) -> None:  # noqa: ANN001
    a, b, metrics_dir = two_processes
    for node, times in ((a, 3), (b, 2)):
        for _ in range(times):
            assert httpx.get(f"{node.url}/api/v1/retrievals/7").status_code == 401

    # 127.0.0.1 is in the default allowed networks: no token needed from the node itself
    answers = [httpx.get(f"{node.url}/metrics") for node in (a, b)]

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert sample(answer.text, "pacsbridge_http_requests_total", route=ROUTE) == 5
    pids = {a.popen.pid, b.popen.pid}
    files = {p.name for p in metrics_dir.iterdir()}
    assert all(any(str(pid) in name for name in files) for pid in pids), files
