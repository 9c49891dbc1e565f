"""How fast Chromium itself uploads files, to a server that does nothing: the floor under the page.

    python bench/upload_chromium_floor.py [--instances 600] [--rows 512] [--repeat 3]

``upload_vs_curl.py`` compares the import page with ``curl -T`` against ``pacsbridge serve``.
This script takes the page and pacsbridge out: a sink (threads that ``recv_into`` one buffer
and answer 200, ``100 Continue`` when asked) and a blank page whose JavaScript PUTs the files
with ``fetch``, as file-backed ``Blob`` slices, the way the import page sends its parts:

* ``1 file, whole``: one ``File`` (all instances concatenated, 315 MB at the defaults) as one
  PUT: the least work a page can ask of Chromium;
* ``N files, 32 MiB parts, k in flight``: the instances as one ``Blob`` of N file items, cut
  into 32 MiB parts, ``k`` PUTs at once (the import page sends 2);
* ``curl -T``: the same concatenated file, same sink.

Interleaved rounds; the page cache is flushed before each run. Whatever the page does on top
of these runs, it cannot go faster than them. Prints each median, its ratio to curl, and the
CPU seconds of every Chromium process type and of the sink during the run.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "upload_chromium_floor"
PART = 32 * 1024**2
PAGE = b"<!doctype html><title>sink</title><input type=file multiple id=files>"
SEND = """async ([partBytes, inflight]) => {
  const whole = new Blob([...document.querySelector('#files').files]);
  const parts = [];
  for (let a = 0; a < whole.size; a += partBytes) {
    parts.push([a, Math.min(whole.size, a + partBytes)]);
  }
  let next = 0;
  const t0 = performance.now();
  async function lane() {
    while (next < parts.length) {
      const [a, b] = parts[next++];
      const response = await fetch('/sink', {method: 'PUT', body: whole.slice(a, b)});
      if (!response.ok) throw new Error('HTTP ' + response.status);
      await response.text();
    }
  }
  await Promise.all(Array.from({length: inflight}, lane));
  return [(performance.now() - t0) / 1000, whole.size];
}"""


class Sink:
    """HTTP/1.1 on 127.0.0.1: GET answers the page, any other request's body is read and dropped."""

    def __init__(self) -> None:
        self.listener = socket.create_server((c.HOST, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = memoryview(bytearray(1 << 20))
        with conn:
            head = b""
            while True:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                header, head = head.split(b"\r\n\r\n", 1)
                lines = header.split(b"\r\n")
                fields = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(b":") for x in lines[1:])
                }
                if fields.get(b"expect", b"").lower() == b"100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                left = int(fields.get(b"content-length", b"0")) - len(head)
                head = b""
                while left > 0:
                    n = conn.recv_into(buf[: min(left, len(buf))])
                    if not n:
                        return
                    left -= n
                body = PAGE if lines[0].startswith(b"GET") else b"{}"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of each Chromium process type (Playwright's) and of this process."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {"sink (this process)": sum(os.times()[:2])}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"chromium" not in cmd or b"playwright" not in cmd:
            continue
        kind = cmd.split(b"--type=")[1].split(b" ")[0].decode() if b"--type=" in cmd else "browser"
        if b"NetworkService" in cmd:
            kind = "network"
        found[kind] = found.get(kind, 0.0) + (int(stat[11]) + int(stat[12])) / tick
    return found


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        k: round(v - before.get(k, 0.0), 2)
        for k, v in after.items()
        if v - before.get(k, 0.0) >= 0.01
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=600)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    warning = c.busy_warning()
    if warning:
        print(warning)
    sink = Sink()
    url = f"http://{c.HOST}:{sink.port}"
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch:
        root = Path(scratch)
        files = [
            str(p) for p in c.make_study_files(root / "media", args.instances, args.rows, args.rows)
        ]
        joined = root / "all.bin"
        with joined.open("wb") as out:
            for name in files:
                out.write(Path(name).read_bytes())
        mb = joined.stat().st_size / 1e6
        print(f"data: {len(files)} files, {mb:.0f} MB")
        runs = {
            "curl -T, 1 file": None,
            "Chromium, 1 file, whole": ([str(joined)], 1 << 40, 1),
            f"Chromium, {len(files)} files, 1 lane": (files, PART, 1),
            f"Chromium, {len(files)} files, 2 lanes": (files, PART, 2),
            f"Chromium, {len(files)} files, 4 lanes": (files, PART, 4),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page()
            page.goto(url + "/")
            page.set_input_files("#files", files)
            page.evaluate(SEND, [PART, 2])  # warm-up
            for _ in range(args.repeat):
                for name, how in runs.items():
                    os.sync()
                    before = cpu_seconds()
                    if how is None:
                        started = time.perf_counter()
                        argv = [
                            "curl",
                            "-sS",
                            "-f",
                            "-o",
                            "/dev/null",
                            "-T",
                            str(joined),
                            url + "/sink",
                        ]
                        subprocess.run(argv, check=True)
                        took = time.perf_counter() - started
                    else:
                        chosen, part, inflight = how
                        page.set_input_files("#files", chosen)
                        took, _ = page.evaluate(SEND, [part, inflight])
                    seconds[name].append(took)
                    cpu[name].append(spent(before, cpu_seconds()))
                    print(f"  {name}: {took:.2f} s  CPU {cpu[name][-1]}")
            browser.close()
    curl = c.median(seconds["curl -T, 1 file"])
    rows = [
        c.row(
            name,
            c.median(s),
            args.instances,
            mb,
            float("nan"),
            curl,
            all_seconds=[round(x, 2) for x in s],
            cpu_s=cpu[name][len(s) // 2],
        )
        for name, s in seconds.items()
    ]
    c.print_table("Chromium's own upload floor (sink on loopback; ratio column: to curl)", rows)
    notes = [
        "N files: one Blob of the files cut into 32 MiB parts, k lanes = k PUTs in flight; "
        "ratio_to_dcmtk here is the ratio to curl -T to the same sink; "
        "upload_vs_curl.py compares the page with curl against pacsbridge itself.",
    ] + ([warning] if warning else [])
    for note in notes:
        print(note)
    c.write_results(NAME, vars(args) | {"megabytes": round(mb, 1)}, rows, notes)


if __name__ == "__main__":
    main()
