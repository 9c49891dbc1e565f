"""C-STORE of N instances to DCMTK storescp: pacsbridge c_store over 1, 2 and 4 associations vs
DCMTK storescu (one association), same files, same receiver settings.

    python bench/store_vs_storescu.py [--instances 300] [--rows 512] [--columns 512]

Each run gets a fresh /usr/bin/storescp (+uf, -od its own folder) on a free port, and the
received file count is checked. Our side runs in a child Python that times only the c_store
loop (imports excluded); storescu is timed as a whole process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "store_vs_storescu"


def worker(args: argparse.Namespace) -> None:
    """Child: our c_store over ``--k`` associations; prints seconds and outcome counts."""
    sys.path.insert(0, str(c.REPO / "src"))
    from pacsbridge.dicomnet.peers import LocalAE, Peer
    from pacsbridge.dicomnet.store import c_store

    paths = [Path(p) for p in Path(args.list_file).read_text().split("\n") if p]
    peer = Peer("STORESCP", c.HOST, args.port, "bench storescp")
    start = time.perf_counter()
    outcomes = list(c_store(LocalAE(), peer, paths, associations=args.k))
    seconds = time.perf_counter() - start
    bad = [o for o in outcomes if not o.ok]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "ok": len(outcomes) - len(bad),
                "failed": len(bad),
                "first_failure": bad[0].detail if bad else "",
            }
        )
    )


def start_storescp(folder: Path, log: Path):
    folder.mkdir(parents=True)
    port = c.free_port()
    proc = c.popen(
        [
            c.STORESCP,
            "--aetitle",
            "STORESCP",
            "+uf",
            "-od",
            str(folder),
            "--disable-host-lookup",
            str(port),
        ],
        env=c.tool_env(),
        log=log,
    )
    c.wait_listening(port, proc)
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; median shown")
    parser.add_argument("--associations", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--list-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        paths = c.make_study_files(tmp / "data", args.instances, args.rows, args.columns)
        mb = c.du_mb(paths)
        print(
            f"data: {len(paths)} instances {args.rows}x{args.columns} 16-bit, {mb:.0f} MB "
            f"(made in {time.perf_counter() - t0:.1f} s)"
        )
        list_file = tmp / "paths.txt"
        list_file.write_text("\n".join(str(p) for p in paths))
        notes: list[str] = [w for w in [c.busy_warning()] if w]
        if notes:
            print(notes[0])
        samples: dict[str, list[tuple[float, float, dict]]] = {}

        def dcmtk(rep: int) -> None:
            recv = tmp / f"recv-dcmtk-{rep}"
            server, port = start_storescp(recv, tmp / f"storescp-dcmtk-{rep}.log")
            run = c.run_child(
                [
                    c.STORESCU,
                    "-aet",
                    "BENCH",
                    "-aec",
                    "STORESCP",
                    c.HOST,
                    str(port),
                    *map(str, paths),
                ],
                env=c.tool_env(),
            )
            scp_rss = c.stop(server)
            got = c.count_files(recv)
            if run["rc"] != 0 or got != len(paths):
                raise SystemExit(
                    f"storescu failed (rc {run['rc']}, {got} received):\n{run['stderr'][-2000:]}"
                )
            samples.setdefault("DCMTK storescu, 1 assoc", []).append(
                (run["wall"], run["maxrss_mb"], {"receiver_rss_mb": scp_rss})
            )

        def ours(rep: int, k: int) -> None:
            recv = tmp / f"recv-ours-{k}-{rep}"
            server, port = start_storescp(recv, tmp / f"storescp-ours-{k}-{rep}.log")
            run = c.run_child(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--port",
                    str(port),
                    "--k",
                    str(k),
                    "--list-file",
                    str(list_file),
                ]
            )
            scp_rss = c.stop(server)
            child = c.child_json(run)
            got = c.count_files(recv)
            if child["failed"] or got != len(paths):
                raise SystemExit(
                    f"ours k={k}: {child['failed']} failed "
                    f"({child['first_failure']}), {got}/{len(paths)} received"
                )
            samples.setdefault(f"pacsbridge c_store, {k} assoc", []).append(
                (
                    child["seconds"],
                    run["maxrss_mb"],
                    {"receiver_rss_mb": scp_rss, "process_wall_s": run["wall"]},
                )
            )

        for rep in range(args.repeat):  # interleaved, so drifting load hits every run alike
            dcmtk(rep)
            for k in args.associations:
                ours(rep, k)

    rows = c.summarise(samples, len(paths), mb)
    notes.append(f"seconds: median of {args.repeat} interleaved runs; peak RSS: max.")
    notes.append(
        "ours: seconds = c_store loop only (imports excluded); process_wall_s adds "
        "interpreter start and imports. storescu: whole process."
    )
    notes.append("peak RSS = the sender process (GNU time %M); receiver_rss_mb = storescp.")
    c.print_table(f"C-STORE {len(paths)} instances ({mb:.0f} MB) to storescp +uf, loopback", rows)
    c.write_results(NAME, vars(args) | {"megabytes": round(mb, 1)}, rows, notes)


if __name__ == "__main__":
    main()
