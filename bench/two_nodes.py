"""Scale-out: simultaneous imports and retrievals over two ``pacsbridge serve`` nodes, and one.

    python bench/two_nodes.py [--imports 20] [--instances 300] [--retrievals 50]
                              [--retrieval-instances 20] [--repeat 1]

The load, all at once: ``--imports`` imports of ``--instances`` small synthetic instances each
(launch, upload of the zip, analysis, confirmation, C-STORE to the PACS), and ``--retrievals``
FSE retrievals of distinct studies of ``--retrieval-instances`` each (C-FIND, C-MOVE from the
source, package ready). Every client polls its import or retrieval once a ``--poll`` seconds,
as the monitor page and the FSE gateway do. The PACS and the source are Orthanc; the nodes
share a fresh PostgreSQL database, a Redis database and one data folder, each with its own
web port, Storage SCP and AE title (docs/deployment.md, "Several nodes").

The same load runs on two nodes and on one, interleaved (one, two, one, two... with
``--repeat``), each run on a new database, queue, data folder and PACS. Reported per run:
errors (imports not completed, retrievals not available, HTTP errors), total seconds, p95 of
every API call's latency during the load (and without the archive uploads), each node's peak
memory (``VmHWM``), instances stored on the PACS per second and received from the source per
second. Writes bench/results/two_nodes-<date>.json.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import _common as c  # noqa: E402
from _cluster import FSE_KEY, RIS_KEY, Node, Orthanc, fresh_database, fresh_redis  # noqa: E402

from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose  # noqa: E402

NAME = "two_nodes"
SOURCE = "src"
RUNNING = {"queued", "querying", "retrieving"}


@dataclass
class Load:
    """What one run did: latencies by call, finish times, errors."""

    t0: float = 0.0
    latencies: list[tuple[str, float]] = field(default_factory=list)
    imports_done: list[float] = field(default_factory=list)
    retrievals_done: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    memory_before: dict[str, float] = field(default_factory=dict)
    peak_before: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, http: httpx.Client, kind: str, method: str, url: str, **kw) -> httpx.Response:
        start = time.perf_counter()
        answer = http.request(method, url, **kw)
        with self.lock:
            self.latencies.append((kind, time.perf_counter() - start))
            if answer.status_code >= 400:
                self.errors.append(f"{kind} {answer.status_code}")
        return answer


def _import_one(load: Load, node: Node, archive: bytes, poll: float, timeout: float) -> None:
    with httpx.Client(base_url=node.url, timeout=120) as http:
        token = load.call(
            http, "launch", "POST", "/api/v1/launch", json=c.LAUNCH, headers=_b(RIS_KEY)
        )
        auth = _b(token.json()["token"])
        import_id = load.call(http, "create", "POST", "/api/v1/imports", headers=auth).json()["id"]
        url = f"/api/v1/imports/{import_id}"
        load.call(http, "upload", "PUT", f"{url}/archive", content=archive, headers=auth)
        if _poll_import(load, http, url, auth, "awaiting_confirmation", poll, timeout):
            load.call(http, "confirm", "POST", f"{url}/confirm", json={}, headers=auth)
            if _poll_import(load, http, url, auth, "completed", poll, timeout):
                with load.lock:
                    load.imports_done.append(time.perf_counter() - load.t0)


def _poll_import(load: Load, http, url: str, auth: dict, wanted: str, poll: float, timeout: float):  # noqa: ANN001
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        state = load.call(http, "import status", "GET", url, headers=auth).json()["state"]
        if state == wanted:
            return True
        if state in ("failed", "cancelled"):
            break
        time.sleep(poll)
    load.errors.append(f"import {url} not {wanted}")
    return False


def _retrieve_one(load: Load, node: Node, accession: str, poll: float, timeout: float) -> None:
    body = {"source": SOURCE, "accession_numbers": [accession]}
    with httpx.Client(base_url=node.url, timeout=120) as http:
        answer = load.call(
            http, "request", "POST", "/api/v1/retrievals", json=body, headers=_b(FSE_KEY)
        )
        url = f"/api/v1/retrievals/{answer.json()['id']}"
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            document = load.call(http, "retrieval status", "GET", url, headers=_b(FSE_KEY)).json()
            if document["state"] not in RUNNING:
                break
            time.sleep(poll)
        if document["state"] != "available":
            load.errors.append(f"retrieval {url} {document['state']}")
        else:
            with load.lock:
                load.retrievals_done.append(time.perf_counter() - load.t0)


def _b(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _archives(folder: Path, imports: int, instances: int, rows: int) -> list[bytes]:
    """One zip per import, each a study of its own (series of up to 100 instances)."""
    found = []
    per_series = min(100, instances)
    for n in range(imports):
        patient = SamplePatient(name="TEST^TEST", patient_id=f"EXT-{n}")
        study = SampleStudy(
            patient=patient,
            series_count=-(-instances // per_series),
            instances_per_series=per_series,
            rows=rows,
            columns=rows,
        )
        paths = write_loose(folder / f"import-{n}", [study], junk=False)[:instances]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path in paths:
                archive.write(path, path.name)
        found.append(buffer.getvalue())
    return found


def _source_studies(folder: Path, source: Orthanc, count: int, instances: int) -> list[str]:
    """Load ``count`` studies onto the source; their accession numbers."""
    accessions = []
    for n in range(count):
        patient = SamplePatient(name="ROSSI^MARIA", patient_id=f"P{n}-{uuid.uuid4().hex[:6]}")
        study = SampleStudy(
            patient=patient,
            accession_number=f"K{uuid.uuid4().hex[:10].upper()}",
            series_count=1,
            instances_per_series=instances,
            rows=16,
            columns=16,
        )
        source.load(write_loose(folder / f"source-{n}", [study], junk=False))
        accessions.append(study.accession_number)
    return accessions


def run(args: argparse.Namespace, root: Path, nodes: int, source: Orthanc, work: dict) -> dict:
    """One run of the whole load on ``nodes`` nodes; its figures."""
    folder = Path(tempfile.mkdtemp(prefix=f"run-{nodes}-", dir=root))
    pacs = Orthanc(folder / "pacs", "BENCHPACS").start()
    with fresh_database() as database, fresh_redis() as redis_url:
        shared = {
            "storage": {"data_dir": str(folder / "shared-data")},
            "database": {"url": database},
            "jobs": {"backend": "redis", "redis_url": redis_url, "workers": args.workers},
            "ris": {"api_keys": [RIS_KEY]},
            "fse": {"api_keys": [FSE_KEY], "quiet_period_seconds": args.quiet},
            "pacs": {"ae_title": pacs.ae_title, "host": "127.0.0.1", "port": pacs.port},
            "sources": [
                {
                    "name": SOURCE,
                    "ae_title": source.ae_title,
                    "host": "127.0.0.1",
                    "port": source.port,
                    "max_concurrent_retrievals": args.slots,
                }
            ],
        }
        cluster = [Node(name, folder, shared) for name in "ab"[:nodes]]
        source.moves_to({n.ae_title: ("127.0.0.1", n.scp_port) for n in cluster})
        try:
            return _measure(args, cluster, pacs, work)
        finally:
            for node in cluster:
                node.stop()
            pacs.stop()


def _measure(args: argparse.Namespace, cluster: list[Node], pacs: Orthanc, work: dict) -> dict:
    for node in cluster:
        node.start()
    with httpx.Client() as http:
        for node in cluster:
            node.wait_ready(http)
    load = Load()
    load.memory_before = {n.name: round(n.memory_mb(), 1) for n in cluster}
    load.peak_before = {n.name: round(n.peak_memory_mb(), 1) for n in cluster}
    timeout = args.timeout
    threads = [
        threading.Thread(
            target=_import_one, args=(load, cluster[n % len(cluster)], z, args.poll, timeout)
        )
        for n, z in enumerate(work["archives"])
    ] + [
        threading.Thread(
            target=_retrieve_one, args=(load, cluster[n % len(cluster)], a, args.poll, timeout)
        )
        for n, a in enumerate(work["accessions"])
    ]
    load.t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - load.t0
    return _figures(args, cluster, pacs, load, total)


def _figures(args, cluster: list[Node], pacs: Orthanc, load: Load, total: float) -> dict:  # noqa: ANN001
    stored = pacs.instance_count()
    expected = args.imports * args.instances
    if stored != expected:
        load.errors.append(f"PACS holds {stored} instances, {expected} imported")
    received = len(load.retrievals_done) * args.retrieval_instances
    all_calls = [s for _, s in load.latencies]
    no_uploads = [s for kind, s in load.latencies if kind != "upload"]
    return {
        "nodes": len(cluster),
        "errors": len(load.errors),
        "error_samples": load.errors[:5],
        "seconds": round(total, 2),
        "api_calls": len(all_calls),
        "api_p95_ms": round(_p95(all_calls) * 1000, 1),
        "api_p95_ms_without_uploads": round(_p95(no_uploads) * 1000, 1),
        "peak_memory_mb": {n.name: round(n.peak_memory_mb(), 1) for n in cluster},
        "memory_before_load_mb": load.memory_before,
        "peak_memory_before_load_mb": load.peak_before,
        "imports_seconds": round(max(load.imports_done, default=0), 2),
        "stored_instances_per_s": round(stored / max(load.imports_done, default=total), 1),
        "retrievals_seconds": round(max(load.retrievals_done, default=0), 2),
        "received_instances_per_s": round(received / max(load.retrievals_done, default=total), 1),
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


def _print(runs: list[dict]) -> None:
    head = (
        f"{'nodes':>5} {'errors':>6} {'seconds':>8} {'p95 ms':>7} {'p95 no-up':>9} "
        f"{'stored/s':>9} {'received/s':>10}  peak MB per node"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in runs:
        print(
            f"{r['nodes']:>5} {r['errors']:>6} {r['seconds']:>8.2f} {r['api_p95_ms']:>7.1f} "
            f"{r['api_p95_ms_without_uploads']:>9.1f} {r['stored_instances_per_s']:>9.1f} "
            f"{r['received_instances_per_s']:>10.1f}  {r['peak_memory_mb']}"
        )


def _ratios(runs: list[dict]) -> dict:
    """Each two-node run against the one-node run just before it (interleaved pairs)."""
    pairs = list(zip(runs[0::2], runs[1::2], strict=False))
    ratios = [round(one["seconds"] / two["seconds"], 2) for one, two in pairs]
    return {
        "one_over_two_seconds": ratios,
        "median_ratio": c.median(ratios),
        "median_seconds": {
            n: c.median([r["seconds"] for r in runs if r["nodes"] == n]) for n in (1, 2)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=20)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rows", type=int, default=32, help="Rows and columns of an instance.")
    parser.add_argument("--retrievals", type=int, default=50)
    parser.add_argument("--retrieval-instances", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="Pairs of runs (one, two nodes).")
    parser.add_argument("--workers", type=int, default=2, help="jobs.workers of each node.")
    parser.add_argument("--slots", type=int, default=4, help="max_concurrent_retrievals.")
    parser.add_argument("--quiet", type=float, default=0.5, help="fse.quiet_period_seconds.")
    parser.add_argument("--poll", type=float, default=1.0, help="Seconds between status polls.")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    warning = c.busy_warning()
    with tempfile.TemporaryDirectory(prefix="bench-two-nodes-") as scratch:
        root = Path(scratch)
        source = Orthanc(root / "source", "BENCHSRC").start()
        try:
            work = {
                "archives": _archives(root / "media", args.imports, args.instances, args.rows),
                "accessions": _source_studies(
                    root / "media", source, args.retrievals, args.retrieval_instances
                ),
            }
            runs = [run(args, root, n, source, work) for _ in range(args.repeat) for n in (1, 2)]
        finally:
            source.stop()
    _print(runs)
    ratios = _ratios(runs)
    print(f"one node / two nodes, total seconds: {ratios}")
    notes = [warning] if warning else []
    c.write_results(NAME, vars(args), [*runs, ratios], notes)


if __name__ == "__main__":
    main()
