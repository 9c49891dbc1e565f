"""C-STORE of N instances: DCMTK storescu against pacsbridge c_store (fast and slow data phase)
on one association, and c_store over 2 associations against ``storescp --fork``.

    python bench/store_vs_storescu.py [--instances 300] [--rows 512] [--columns 512]
                                      [--max-pdu 16384] [--repeat 3]

Each run gets a fresh /usr/bin/storescp (+uf, -od its own folder, ``--max-pdu`` as given, so
every sender sends PDUs of the same size) on a free port, and the received file count is
checked. One association is received by plain storescp; more than one by ``storescp --fork``
(plain storescp serves one association at a time). Our side runs in a child Python that times
only the c_store loop (imports excluded) and reports its CPU seconds; storescu is timed as a
whole process. Runs are interleaved (storescu, ours..., storescu, ours...) and each ratio is
taken against the storescu run of the same round; the median ratio is printed with the aims:
fast path at most 1.0x storescu on one association, 2 associations faster than storescu.
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
    local = LocalAE(fast_store=not args.slow)
    start, cpu = time.perf_counter(), time.process_time()
    outcomes = list(c_store(local, peer, paths, associations=args.k))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    bad = [o for o in outcomes if not o.ok]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "ok": len(outcomes) - len(bad),
                "failed": len(bad),
                "first_failure": bad[0].detail if bad else "",
            }
        )
    )


def start_storescp(folder: Path, log: Path, max_pdu: int, fork: bool = False):
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
            "--max-pdu",
            str(max_pdu),
            *(["--fork"] if fork else []),
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
    parser.add_argument("--max-pdu", type=int, default=16384, help="both sides (DCMTK: max 128K)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
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
            c.settle_disk()
            server, port = start_storescp(recv, tmp / f"storescp-dcmtk-{rep}.log", args.max_pdu)
            run = c.run_child(
                [
                    c.STORESCU,
                    "--max-pdu",
                    str(args.max_pdu),
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
            c.settle_disk(recv)
            if run["rc"] != 0 or got != len(paths):
                raise SystemExit(
                    f"storescu failed (rc {run['rc']}, {got} received):\n{run['stderr'][-2000:]}"
                )
            samples.setdefault("storescu, 1 assoc", []).append(
                (run["wall"], run["maxrss_mb"], {"receiver_rss_mb": scp_rss, "cpu_s": run["cpu_s"]})
            )

        def ours(rep: int, k: int, slow: bool) -> None:
            name = f"ours {'slow' if slow else 'fast'} {k}"
            recv = tmp / f"recv-{name.replace(' ', '-')}-{rep}"
            c.settle_disk()
            server, port = start_storescp(
                recv, tmp / f"storescp-{name.replace(' ', '-')}-{rep}.log", args.max_pdu, k > 1
            )
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
                    *(["--slow"] if slow else []),
                ]
            )
            scp_rss = c.stop(server)
            child = c.child_json(run)
            got = c.count_files(recv)
            c.settle_disk(recv)
            if child["failed"] or got != len(paths):
                raise SystemExit(
                    f"{name}: {child['failed']} failed "
                    f"({child['first_failure']}), {got}/{len(paths)} received"
                )
            label = f"ours {'slow' if slow else 'fast'}, {k} assoc" + (" --fork" if k > 1 else "")
            samples.setdefault(label, []).append(
                (
                    child["seconds"],
                    run["maxrss_mb"],
                    {
                        "receiver_rss_mb": scp_rss,
                        "process_wall_s": run["wall"],
                        "cpu_s": child["cpu_seconds"],
                    },
                )
            )

        plan = [(1, False), (1, True), (2, False)]
        for rep in range(args.repeat):  # interleaved, so drifting load hits every run alike
            dcmtk(rep)
            for k, slow in plan:
                ours(rep, k, slow)

    rows = c.summarise(samples, len(paths), mb)
    notes.append(f"seconds: median of {args.repeat} interleaved runs; peak RSS: max.")
    notes.append(
        "ours: seconds = c_store loop only (imports excluded); process_wall_s adds "
        "interpreter start and imports. storescu: whole process."
    )
    notes.append("peak RSS = the sender process (GNU time %M); receiver_rss_mb = storescp.")
    c.print_table(
        f"C-STORE {len(paths)} instances ({mb:.0f} MB) to storescp +uf, "
        f"max PDU {args.max_pdu}, loopback",
        rows,
    )
    aims = _aims(samples, len(paths))
    for line in aims:
        print(line)
    notes += aims
    c.write_results(NAME, vars(args) | {"megabytes": round(mb, 1)}, rows, notes)


def _aims(samples: dict[str, list[tuple[float, float, dict]]], instances: int) -> list[str]:
    """Ratios pair by pair (each run against the storescu run of its round), median shown."""
    names = list(samples)
    reference = [seconds for seconds, _, _ in samples[names[0]]]
    ratios = {
        name: c.median([ours[0] / ref for ours, ref in zip(samples[name], reference, strict=True)])
        for name in names[1:]
    }
    lines = [f"pairwise ratio to storescu, median: {r:.2f}x  {name}" for name, r in ratios.items()]
    # The sender's CPU on both sides (storescu: the whole process; ours: the c_store loop).
    cpu = {name: c.median([extra["cpu_s"] for _, _, extra in samples[name]]) for name in names}
    lines += [
        f"sender CPU-seconds per 300 instances, median: {v * 300 / instances:.2f}  {name}"
        for name, v in cpu.items()
    ]
    fast1 = next(r for name, r in ratios.items() if "fast, 1 assoc" in name)
    fast2 = next(r for name, r in ratios.items() if "fast, 2 assoc" in name)
    lines.append(
        f"aim: store at most 1.0x storescu on one association: {fast1:.2f}x "
        f"{'MET' if fast1 <= 1.0 else 'NOT MET'}"
    )
    lines.append(
        f"aim: two associations (storescp --fork) faster than storescu: {fast2:.2f}x "
        f"{'MET' if fast2 < 1.0 else 'NOT MET'}"
    )
    return lines


if __name__ == "__main__":
    main()
