"""Viewing: time to first image in Chromium, WADO-RS throughput against ``cat``, server memory.

A real ``pacsbridge serve`` (its own process, so its memory is its own) gets a CT uploaded as
an operator would (zip, PUT in parts, analysis); the operator preview's link then opens:

1. Chromium (Playwright, /usr/bin/chromium) on the viewer: seconds from ``goto`` to a
   viewport whose pixels are not blank (``--first-image``, the 600-instance CT);
2. WADO-RS of every series of the study, the body streamed and discarded, against
   ``cat`` of the same files to /dev/null (page cache warm for both; median of ``--repeat``);
3. the server's resident memory sampled every 20 ms from /proc while the whole study is
   retrieved (``--memory-instances``: 4,000 512x512 instances are 2 GB): peak minus the
   RSS before the download, which must not grow with the study.

    python bench/viewer.py [--instances 600] [--memory-instances 4000] [--repeat 3]

Prints a table and writes bench/results/viewer-<date>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
from _common import LAUNCH, REPO, RESULTS, busy_warning, free_port, make_study_files, median

PART = 512 * 1024**2
MiB = 1024**2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=600)
    parser.add_argument("--memory-instances", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warning = busy_warning()
    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as scratch:
        root = Path(scratch)
        ct = _scenario(root / "ct", args.instances, args.rows)
        result = {
            **ct.first_image(),
            **ct.throughput(args.repeat),
        }
        ct.stop()
        big = _scenario(root / "big", args.memory_instances, args.rows)
        result.update(big.memory())
        big.stop()
    result.update(instances=args.instances, memory_instances=args.memory_instances, warning=warning)
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    (RESULTS / f"viewer-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")


class _Scenario:
    """A serve process with one uploaded import and its preview token."""

    def __init__(self, folder: Path, count: int, rows: int) -> None:
        self.files = make_study_files(folder / "media", count, rows, rows)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = _serve(folder / "data", self.port, folder / "serve.log")
        self.token = _preview_token(self.url, _zip(self.files, folder / "media.zip"))

    @property
    def root(self) -> str:
        return f"{self.url}/dicomweb/t/{self.token}"

    def first_image(self) -> dict:
        """Cold: a browser that never saw the viewer (48 MiB of OHIF to fetch and compile);
        warm: the same browser opening a link again (OHIF's files from its HTTP cache)."""
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            seconds = []
            for _ in range(2):
                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{self.url}/viewer/{self.token}")
                seconds.append(round(_until_image(page, started), 2))
                page.close()
            browser.close()
        return {"first_image_cold_s": seconds[0], "first_image_warm_s": seconds[1]}

    def throughput(self, repeat: int) -> dict:
        size = sum(p.stat().st_size for p in self.files)
        subprocess.run(["cat", *map(str, self.files)], stdout=subprocess.DEVNULL, check=True)
        cat, wado = [], []
        for _ in range(repeat):
            started = time.monotonic()
            subprocess.run(["cat", *map(str, self.files)], stdout=subprocess.DEVNULL, check=True)
            cat.append(time.monotonic() - started)
            started = time.monotonic()
            received = self._retrieve_study()
            wado.append(time.monotonic() - started)
            assert received >= size, (received, size)
        return {
            "study_mb": round(size / MiB, 1),
            "cat_mb_per_s": round(size / MiB / median(cat), 1),
            "wado_mb_per_s": round(size / MiB / median(wado), 1),
            "wado_over_cat": round(median(cat) / median(wado), 2),
        }

    def memory(self) -> dict:
        before = _rss_mb(self.process.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak.append(_rss_mb(self.process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        received = self._retrieve_study()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        return {
            "memory_study_mb": round(received / MiB, 1),
            "memory_seconds": round(seconds, 1),
            "server_rss_before_mb": round(before, 1),
            "server_rss_peak_mb": round(max(peak), 1),
            "server_rss_growth_mb": round(max(peak) - before, 1),
        }

    def _retrieve_study(self) -> int:
        """The whole study through curl (a client that does not slow the transfer down)."""
        studies = httpx.get(f"{self.root}/studies").json()
        study = studies[0]["0020000D"]["Value"][0]
        accept = 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*'
        url = f"{self.root}/studies/{study}"
        command = ["curl", "-sS", "-o", "/dev/null", "-H", accept, "-w", "%{size_download}", url]
        done = subprocess.run(command, capture_output=True, check=True, text=True)
        return int(done.stdout)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _scenario(folder: Path, count: int, rows: int) -> _Scenario:
    folder.mkdir(parents=True)
    return _Scenario(folder, count, rows)


def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    config = data.parent / "pacsbridge.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{data}"\n[web]\nhost = "127.0.0.1"\nport = {port}\n'
        '[ris]\napi_keys = ["bench-ris"]\n[jobs]\nbackend = "immediate"\n'
        '[pacs]\nhost = "127.0.0.1"\nport = 1\n'
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pacsbridge", "serve", "--config", str(config)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)  # the server is starting
    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")


def _zip(paths: list[Path], target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in paths:
            archive.write(path, path.relative_to(path.parents[1]).as_posix())
    return target


def _preview_token(url: str, archive: Path) -> str:
    token = httpx.post(
        f"{url}/api/v1/launch", json=LAUNCH, headers={"Authorization": "Bearer bench-ris"}
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    import_id = httpx.post(f"{url}/api/v1/imports", headers=auth).json()["id"]
    total = archive.stat().st_size
    with archive.open("rb") as handle:
        for start in range(0, total, PART):
            chunk = handle.read(PART)
            headers = {**auth, "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}"}
            answer = httpx.put(
                f"{url}/api/v1/imports/{import_id}/archive",
                content=chunk,
                headers=headers,
                timeout=1800,
            )
            answer.raise_for_status()
    preview = httpx.get(f"{url}/imports/{import_id}/viewer", cookies={"pacsbridge_token": token})
    return preview.headers["location"].split("/viewer/", 1)[1]


def _until_image(page, started: float) -> float:  # noqa: ANN001 - a Playwright page
    from PIL import Image

    while time.monotonic() - started < 60:
        canvas = page.locator(".cornerstone-canvas").first
        if canvas.count() and canvas.is_visible():
            image = Image.open(io.BytesIO(canvas.screenshot())).convert("L")
            low, high = image.getextrema()
            if high - low > 50:
                return time.monotonic() - started
        page.wait_for_timeout(50)
    raise RuntimeError("no image within 60 s")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
