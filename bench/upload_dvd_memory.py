"""Browser memory while the upload page zips a 4.7 GB DVD (ZIP64), without sending it.

    python bench/upload_dvd_memory.py [--gb 4.7] [--src TREE]

A sparse file of ``--gb`` GB (no disk space used) and a DICOMDIR are set on a file input of
the import page; the page's own ``zipParts`` (static/js/upload.js) makes every part of the
zip and drops each part (the upload of a part is a ``Blob`` of the files' slices: it holds no
bytes). A page whose zip writer computes the CRC-32 (``--src`` of a tree from before the
server filled them, docs/operator-pages.md) reads every byte for it meanwhile; today's page
reads none. Sampled meanwhile: the resident memory of each of our Chromium processes (every
100 ms) and the page's JS heap (``performance.memory`` with ``--enable-precise-memory-info``).
The zip must end with a ZIP64 end record. ``--src`` runs another tree's page, for
before/after. Writes bench/results/upload_dvd_memory-<date>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import upload_vs_curl as u  # noqa: E402

NAME = "upload_dvd_memory"
ZIP_ALL = """async () => {
  const { zipParts, archiveSize } = await import("/static/js/upload.js");
  const files = [...document.getElementById("probe").files]
    .map((file) => ({ file, name: file.webkitRelativePath }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const total = archiveSize(files);
  const started = performance.now();
  let parts = 0, bytes = 0, heap = 0, last = null;
  for await (const part of zipParts(files, 0, 8 << 20, () => {})) {
    parts += 1;
    bytes += part.blob.size;
    last = part.blob;
    heap = Math.max(heap, performance.memory.usedJSHeapSize);
  }
  const tail = new Uint8Array(await last.slice(-98).arrayBuffer());
  const zip64 = tail[0] === 0x50 && tail[1] === 0x4b && tail[2] === 6 && tail[3] === 6;
  return { seconds: (performance.now() - started) / 1000, total, bytes, parts, heap, zip64 };
}"""


def own_chromium_rss_mb() -> dict[str, float]:
    """RSS of each Chromium process descending from this one, by process type."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
    me, found = str(os.getpid()), {}
    for pid in parents:
        up = pid
        while up in parents and up not in (me, "1"):
            up = parents[up]
        if up != me or pid == me:
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
            if not argv or b"chromium" not in argv[0]:
                continue
            kind = next((a[7:].decode() for a in argv if a.startswith(b"--type=")), "browser")
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        found[kind] = found.get(kind, 0) + kb / 1024
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=4.7)
    parser.add_argument("--src", type=Path, default=c.REPO / "src")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-dvd-") as scratch:
        root = Path(scratch)
        folder = root / "dvd"
        folder.mkdir()
        with (folder / "VIDEO.ISO").open("wb") as sparse:
            sparse.truncate(int(args.gb * 1e9))
        (folder / "DICOMDIR").write_bytes(b"D" * 1000)
        port = c.free_port()
        url = f"http://127.0.0.1:{port}"
        server = u.serve(root / "data", port, root / "serve.log", 0, args.src)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--enable-precise-memory-info"]
                )
                result, before, peak = measure(browser, url, folder)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(args, result, before, peak)


def measure(browser, url: str, folder: Path) -> tuple[dict, dict, dict]:  # noqa: ANN001
    session = u.launch(url)
    page = browser.new_context().new_page()
    page.goto(session["url"])
    page.wait_for_url(f"{url}/imports")
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'file'; i.id = 'probe';"
        " i.webkitdirectory = true; document.body.append(i); }"
    )
    page.set_input_files("#probe", str(folder))
    before, peak, done = own_chromium_rss_mb(), {}, threading.Event()

    def sample() -> None:
        while not done.is_set():
            for kind, mb in own_chromium_rss_mb().items():
                peak[kind] = max(peak.get(kind, 0), mb)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = page.evaluate(ZIP_ALL)
    finally:
        done.set()
        sampler.join()
    assert result["bytes"] == result["total"] and result["zip64"], result
    return result, before, peak


def report(args: argparse.Namespace, result: dict, before: dict, peak: dict) -> None:
    growth = sum(peak.values()) - sum(before.values())
    renderer = peak.get("renderer", 0) - before.get("renderer", 0)
    print(
        f"{result['total'] / 1e9:.2f} GB zip (ZIP64), {result['parts']} parts, "
        f"{result['seconds']:.1f} s ({result['total'] / 1e6 / result['seconds']:.0f} MB/s); "
        f"JS heap peak {result['heap'] / 2**20:.1f} MB; Chromium RSS {sum(before.values()):.0f} MB "
        f"before, growth {growth:+.0f} MB (renderer {renderer:+.0f} MB)"
    )
    row = {
        "run": "zipParts over a DVD",
        "seconds": round(result["seconds"], 2),
        "zip_bytes": result["total"],
        "js_heap_peak_mb": round(result["heap"] / 2**20, 1),
        "chromium_rss_before_mb": {k: round(v) for k, v in before.items()},
        "chromium_rss_peak_mb": {k: round(v) for k, v in peak.items()},
        "chromium_rss_growth_mb": round(growth),
    }
    c.write_results(NAME, vars(args) | {"src": str(args.src)}, [row], [])


if __name__ == "__main__":
    main()
