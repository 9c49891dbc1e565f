"""Browser upload of a folder against ``curl -T`` of a ready zip, same server, same endpoint.

    python bench/upload_vs_curl.py [--instances 600] [--rows 512] [--repeat 3]

A real ``pacsbridge serve`` (its own process, ``--no-embedded-worker`` so no analysis runs
during the next measurement) and headless Chromium (Playwright, /usr/bin/chromium) on the
import page. Each round, interleaved:

1. ``curl -T media.zip`` (a stored zip of the folder, made once beforehand by Python's
   ``zipfile``) as one PUT to ``/api/v1/imports/{id}/archive``: the whole process timed;
2. the browser: the folder set on ``#folder-input`` (``set_input_files``), then timed from the
   click on "Invia" to the response of the PUT carrying the last byte; meanwhile the page's
   JavaScript heap (CDP ``Performance.getMetrics`` JSHeapUsedSize) and the resident memory of
   every Chromium process are sampled.

Each import is cancelled after its run (its files deleted). Aim: browser at most 1.5x curl.
Prints a table and writes bench/results/upload_vs_curl-<date>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "upload_vs_curl"
AIM_RATIO = 1.5
RIS_KEY = "bench-ris"
MiB = 1024**2


def serve(
    data: Path, port: int, log: Path, part_mib: int = 0, src: Path = c.REPO / "src"
) -> subprocess.Popen[bytes]:
    config = data.parent / "pacsbridge.toml"
    upload = f"[upload]\npart_bytes = {part_mib * MiB}\n" if part_mib else ""
    config.write_text(
        upload + f'[storage]\ndata_dir = "{data}"\n[web]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[ris]\napi_keys = ["{RIS_KEY}"]\n[jobs]\nbackend = "sqlite"\n'
        '[pacs]\nhost = "127.0.0.1"\nport = 1\n'
    )
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, "-m", "pacsbridge", "serve", "--no-embedded-worker"]
    process = subprocess.Popen(
        [*argv, "--config", str(config)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)  # the server is starting
    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")


def launch(url: str) -> dict:
    answer = httpx.post(
        f"{url}/api/v1/launch", json=c.LAUNCH, headers={"Authorization": f"Bearer {RIS_KEY}"}
    )
    answer.raise_for_status()
    return answer.json()


def cancel(url: str, token: str, import_id: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{url}/api/v1/imports/{import_id}/cancel", headers=auth).raise_for_status()


def run_curl(url: str, archive: Path) -> float:
    token = launch(url)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    import_id = httpx.post(f"{url}/api/v1/imports", headers=auth).json()["id"]
    target = f"{url}/api/v1/imports/{import_id}/archive"
    argv = ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}"]
    argv += ["-H", "Content-Type: application/zip", "-T", str(archive), target]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    seconds = time.perf_counter() - started
    done = httpx.get(target, headers=auth).json()
    assert done["received_bytes"] == archive.stat().st_size, done
    cancel(url, token, import_id)
    return seconds


def run_browser(browser, url: str, folder: Path, sample: bool = True) -> dict:  # noqa: ANN001
    session = launch(url)
    context = browser.new_context(locale="it-IT")
    page = context.new_page()
    page.goto(session["url"])
    page.wait_for_url(f"{url}/imports")
    page.set_input_files("#folder-input", str(folder))
    page.locator("#send").wait_for(state="visible", timeout=60_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    finished: dict = {}

    def on_response(response) -> None:  # noqa: ANN001
        headers = response.request.headers
        if response.request.method != "PUT" or "content-range" not in headers:
            return
        span, total = headers["content-range"].split(" ")[1].split("/")
        if int(span.split("-")[1]) + 1 == int(total) and response.ok:
            finished.update(at=time.perf_counter(), total=int(total), url=response.url)

    page.on("response", on_response)
    heap, rss = [], []
    rss_before = chromium_rss_mb()
    started = time.perf_counter()
    page.click("#send")
    while "at" not in finished:
        if sample:
            metrics = cdp.send("Performance.getMetrics")["metrics"]
            heap.append(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize") / MiB)
            rss.append(chromium_rss_mb())
        if time.perf_counter() - started > 600:
            raise RuntimeError("the browser upload did not finish in 600 s")
        page.wait_for_timeout(100)
    seconds = finished["at"] - started
    import_id = int(finished["url"].rstrip("/").split("/")[-2])
    cancel(url, session["token"], import_id)
    context.close()
    return {
        "seconds": seconds,
        "zip_bytes": finished["total"],
        "js_heap_peak_mb": max(heap, default=0),
        "js_heap_samples": len(heap),
        "chromium_rss_peak_mb": max(rss, default=0),
        "chromium_rss_growth_mb": max(rss, default=0) - rss_before,
    }


def chromium_rss_mb() -> float:
    """Resident memory of every Chromium process on the machine that Playwright started."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"chromium" not in cmdline or b"playwright" not in cmdline:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def make_zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=600)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=0, help="upload.part_bytes (0: default)")
    parser.add_argument(
        "--src", type=Path, default=c.REPO / "src", help="source tree the server runs (A/B)"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    warning = c.busy_warning()
    if warning:
        print(warning)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as scratch:
        root = Path(scratch)
        folder = root / "media"
        files = c.make_study_files(folder, args.instances, args.rows, args.rows)
        archive = make_zip(folder, root / "media.zip")
        size_mb = c.du_mb(files)
        zip_mb = archive.stat().st_size / 1e6
        print(f"data: {len(files)} files, {size_mb:.0f} MB; zip {zip_mb:.0f} MB")
        port = c.free_port()
        url = f"http://127.0.0.1:{port}"
        server = serve(root / "data", port, root / "serve.log", args.part_mib, args.src)
        curl, ours = [], []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                run_browser(browser, url, folder, sample=False)  # warm-up: cache, JIT, server
                for _ in range(args.repeat):
                    os.sync()  # the last run's writes flushed: each run starts alike
                    curl.append(run_curl(url, archive))
                    os.sync()
                    ours.append(run_browser(browser, url, folder, sample=False))
                    print(f"  curl {curl[-1]:.2f} s, browser {ours[-1]['seconds']:.2f} s")
                os.sync()
                memory = run_browser(browser, url, folder)  # sampled, not timed
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(args, size_mb, curl, ours, memory, warning)


def report(
    args: argparse.Namespace, size_mb: float, curl: list, ours: list, memory: dict, warning: str
) -> None:
    ratios = [o["seconds"] / t for t, o in zip(curl, ours, strict=True)]
    ratio = c.median(ratios)
    mine = c.median([o["seconds"] for o in ours])
    theirs = c.median(curl)
    heap, rss = memory["js_heap_peak_mb"], memory["chromium_rss_peak_mb"]
    growth = memory["chromium_rss_growth_mb"]
    met = ratio <= AIM_RATIO
    rows = [
        c.row("curl -T ready zip", theirs, args.instances, size_mb, float("nan"), None),
        c.row(
            "browser zip + parts",
            mine,
            args.instances,
            size_mb,
            rss,
            theirs,
            js_heap_peak_mb=round(heap, 1),
            chromium_rss_growth_mb=round(growth, 1),
            all_seconds=[round(o["seconds"], 2) for o in ours],
        ),
    ]
    c.print_table("Browser upload vs curl -T (loopback)", rows)
    notes = [
        f"pairs browser/curl: {', '.join(f'{r:.2f}' for r in ratios)} (median {ratio:.2f}x); "
        f"curl {[round(t, 2) for t in curl]} s; aim (<= {AIM_RATIO}x): "
        + ("aim met" if met else "aim NOT met"),
        f"browser memory during one more upload, sampled every 100 ms (not timed: sampling "
        f"costs the page CPU): JS heap peak {heap:.1f} MB ({memory['js_heap_samples']} "
        f"samples, {memory['seconds']:.2f} s); all Chromium processes' RSS peak {rss:.0f} MB "
        f"(RSS column), {growth:+.0f} MB over the RSS just before the click on Invia.",
    ]
    notes += [warning] if warning else []
    for note in notes:
        print(note)
    c.write_results(
        NAME,
        vars(args) | {"src": str(args.src), "median_pair_ratio": round(ratio, 2), "aim_met": met},
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
