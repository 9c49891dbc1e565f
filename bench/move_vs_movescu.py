"""C-MOVE of one study out of DCMTK dcmqrscp: into pacsbridge's StorageSCP (our c_move) vs
DCMTK movescu into DCMTK storescp.

    python bench/move_vs_movescu.py [--instances 300] [--pdu 16384] [--repeat 3] [--slow]

dcmqrscp (TCP_NODELAY=1, uncompressed only) is loaded once with /usr/bin/storescu over one
association (it loses instances stored in parallel), then the study is moved twice:

* DCMTK: ``movescu -S`` (study root) with destination STORESCP = ``storescp +uf``; timed as the
  movescu process; RSS = movescu and, separately, the receiving storescp.
* ours: a child Python starts ``dicomnet.scp.StorageSCP`` (on_land: a name in the folder;
  on_store -> request.write_to into that folder) and runs ``dicomnet.move.c_move`` with
  destination PACSBRIDGE; timed c_move only; RSS and CPU = that one process (receiver and
  mover together). ``--slow``: ``fast_receive`` off (pynetdicom receives).

Both receivers advertise the same maximum PDU (``--pdu``: ``storescp --max-pdu``, our
``LocalAE.maximum_pdu_size``), so dcmqrscp sends both the same PDUs. The ratio is taken pair by
pair (DCMTK, ours, DCMTK, ours...), which survives the load of a shared machine; the aim is
a median pair ratio of at most ``AIM`` (1.1x).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "move_vs_movescu"
AIM = 1.1
#: dcmqrscp refuses a larger MaxPDUSize in its configuration (it exits with status 10).
DCMQRSCP_LARGEST_PDU = 131072

DCMQRSCP_CFG = """\
NetworkTCPPort  = {port}
MaxPDUSize      = {pdu}
MaxAssociations = 16

HostTable BEGIN
ours = (PACSBRIDGE, {host}, {our_port})
dcmtk = (STORESCP, {host}, {storescp_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DCMQRSCP  {storage}  RW  (500, 4096mb)  ANY
AETable END
"""


def worker(args: argparse.Namespace) -> None:
    """Child: our Storage SCP + c_move of the study; prints seconds and counts."""
    sys.path.insert(0, str(c.REPO / "src"))
    import resource

    from pydicom.dataset import Dataset

    from pacsbridge.dicomnet.move import c_move
    from pacsbridge.dicomnet.peers import LocalAE, Peer
    from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def on_land(request: StoreRequest) -> Path:
        return out / f"{request.sop_instance_uid}.part"

    def on_store(request: StoreRequest) -> int:
        request.write_to(out / f"{request.sop_instance_uid}.dcm")
        return 0x0000

    local = LocalAE(maximum_pdu_size=args.pdu, fast_receive=not args.slow)
    scp = StorageSCP(local, c.HOST, args.our_port, on_store, on_land=on_land)
    scp.start()
    try:
        identifier = Dataset()
        identifier.StudyInstanceUID = args.study
        usage = [
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        ]
        start = time.perf_counter()
        if args.mover == "movescu":  # the receiver alone against DCMTK's: DCMTK moves both
            rc = subprocess.run(_movescu_argv("PACSBRIDGE", args.study, args.port)).returncode
            result = type("Result", (), {"status": rc})()
        else:
            result = c_move(
                LocalAE(),
                Peer("DCMQRSCP", c.HOST, args.port, "bench dcmqrscp"),
                "PACSBRIDGE",
                identifier,
                "STUDY",
            )
        seconds = time.perf_counter() - start
        after = [
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        ]
        cpu = sum(
            a.ru_utime - u.ru_utime + a.ru_stime - u.ru_stime
            for a, u in zip(after, usage, strict=True)
        )
    finally:
        scp.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_s": cpu,
                "status": result.status,
                "received": sum(1 for _ in out.iterdir()),
                "result": repr(result),
            }
        )
    )


def _movescu_argv(destination: str, study: str, qr_port: int) -> list[str]:
    return [
        c.MOVESCU,
        "-S",
        "-aet",
        "BENCH",
        "-aec",
        "DCMQRSCP",
        "-aem",
        destination,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        c.HOST,
        str(qr_port),
    ]


def dcmtk_move(tmp, rep, paths, study, qr_port, scp_port, samples, pdu) -> None:
    recv = tmp / f"recv-dcmtk-{rep}"
    recv.mkdir()
    c.settle_disk()
    scp = c.popen(
        [
            c.STORESCP,
            "--aetitle",
            "STORESCP",
            "+uf",
            "--max-pdu",
            str(pdu),
            "-od",
            str(recv),
            "--disable-host-lookup",
            str(scp_port),
        ],
        env=c.tool_env(),
        log=tmp / f"storescp-{rep}.log",
    )
    c.wait_listening(scp_port, scp)
    move = c.run_child(_movescu_argv("STORESCP", study, qr_port), env=c.tool_env())
    scp_rss = c.stop(scp)
    got = c.count_files(recv)
    c.settle_disk(recv)
    if move["rc"] != 0 or got != len(paths):
        raise SystemExit(
            f"movescu: rc {move['rc']}, {got}/{len(paths)} received\n{move['stderr'][-2000:]}"
        )
    cpu = (move["cpu_s"] + scp.cpu_s) * 300 / len(paths)
    samples.setdefault("DCMTK movescu -> storescp", []).append(
        (move["wall"], move["maxrss_mb"], {"receiver_rss_mb": scp_rss, "cpu_s_per_300": cpu})
    )


def ours_move(tmp, rep, paths, study, qr_port, our_port, samples, pdu, slow, mover) -> None:
    c.settle_disk()
    run = c.run_child(
        [
            sys.executable,
            __file__,
            "--worker",
            "--port",
            str(qr_port),
            "--our-port",
            str(our_port),
            "--study",
            study,
            "--out",
            str(tmp / f"recv-ours-{rep}"),
            "--pdu",
            str(pdu),
            *(["--slow"] if slow else []),
            *(["--mover", mover] if mover else []),
        ]
    )
    child = c.child_json(run)
    c.settle_disk(tmp / f"recv-ours-{rep}")
    if child["status"] != 0 or child["received"] != len(paths):
        raise SystemExit(f"ours: {child}")
    cpu = child["cpu_s"] * 300 / len(paths)
    samples.setdefault("pacsbridge c_move -> StorageSCP", []).append(
        (child["seconds"], run["maxrss_mb"], {"process_wall_s": run["wall"], "cpu_s_per_300": cpu})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--pdu", type=int, default=16384, help="max PDU of both receivers")
    parser.add_argument("--slow", action="store_true", help="our SCP without fast_receive")
    parser.add_argument(
        "--mover",
        choices=["c_move", "movescu"],
        default="",
        help="movescu: DCMTK's movescu moves to our SCP too (the receiver alone compared)",
    )
    for hidden in ("--port", "--our-port"):
        parser.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; median shown")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--study", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if not 4096 <= args.pdu <= DCMQRSCP_LARGEST_PDU:
        parser.error(f"--pdu: dcmqrscp's MaxPDUSize takes 4096 to {DCMQRSCP_LARGEST_PDU} bytes")

    warning = c.busy_warning()
    if warning:
        print(warning)
    with tempfile.TemporaryDirectory(prefix="bench-move-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        paths = c.make_study_files(tmp / "data", args.instances, args.rows, args.columns)
        mb = c.du_mb(paths)
        study = c.study_uid_of(paths[0])
        print(
            f"data: {len(paths)} instances {args.rows}x{args.columns} 16-bit, {mb:.0f} MB "
            f"(made in {time.perf_counter() - t0:.1f} s)"
        )

        qr_port, our_port, scp_port = c.free_port(), c.free_port(), c.free_port()
        storage = tmp / "dcmqrscp-db"
        storage.mkdir()
        config = tmp / "dcmqrscp.cfg"
        config.write_text(
            DCMQRSCP_CFG.format(
                port=qr_port,
                pdu=args.pdu,
                host=c.HOST,
                our_port=our_port,
                storescp_port=scp_port,
                storage=storage,
            )
        )
        qr = c.popen(
            [c.DCMQRSCP, "-c", str(config), "--disable-host-lookup"],
            env=c.tool_env(),
            log=tmp / "dcmqrscp.log",
        )
        try:
            c.wait_listening(qr_port, qr)
            t0 = time.perf_counter()
            load = c.run_child(
                [
                    c.STORESCU,
                    "-aet",
                    "LOADER",
                    "-aec",
                    "DCMQRSCP",
                    c.HOST,
                    str(qr_port),
                    *map(str, paths),
                ],
                env=c.tool_env(),
            )
            if load["rc"] != 0:
                raise SystemExit(f"loading dcmqrscp failed: {load['stderr'][-2000:]}")
            print(f"dcmqrscp loaded in {time.perf_counter() - t0:.2f} s")

            samples: dict[str, list[tuple[float, float, dict]]] = {}
            for rep in range(args.repeat):  # interleaved
                dcmtk_move(tmp, rep, paths, study, qr_port, scp_port, samples, args.pdu)
                ours_move(
                    tmp,
                    rep,
                    paths,
                    study,
                    qr_port,
                    our_port,
                    samples,
                    args.pdu,
                    args.slow,
                    args.mover,
                )
        finally:
            c.stop(qr)

    rows = c.summarise(samples, len(paths), mb)
    verdict = _pairs(samples)
    notes = [w for w in [warning] if w] + [
        verdict,
        f"both receivers at a maximum PDU of {args.pdu} bytes"
        + ("; ours with fast_receive off" if args.slow else ""),
        f"seconds: median of {args.repeat} interleaved runs; peak RSS: max.",
        "ours: seconds = c_move only (SCP already listening, imports excluded); "
        "movescu: whole process.",
        "RSS: DCMTK row = movescu (receiver_rss_mb = storescp); ours = mover + receiver in one "
        "process. dcmqrscp (the sender, same for both) not counted.",
    ]
    c.print_table(f"C-MOVE of {len(paths)} instances ({mb:.0f} MB) from dcmqrscp, loopback", rows)
    for r in rows:
        print(f"{r['run']:<34} CPU-seconds per 300 instances: {r['cpu_s_per_300']:.2f}")
    print(verdict)
    c.write_results(NAME, vars(args) | {"megabytes": round(mb, 1)}, rows, notes)


def _pairs(samples: dict[str, list[tuple[float, float, dict]]]) -> str:
    """Ours / DCMTK run by run (each pair ran back to back) and the verdict on the median."""
    dcmtk, ours = samples.values()
    ratios = [o[0] / d[0] for d, o in zip(dcmtk, ours, strict=True)]
    for i, ratio in enumerate(ratios):
        print(f"pair {i + 1}: DCMTK {dcmtk[i][0]:.3f} s, ours {ours[i][0]:.3f} s, {ratio:.2f}x")
    mid = c.median(ratios)
    met = "aim met" if mid <= AIM else "aim NOT met"
    listed = ", ".join(f"{r:.2f}x" for r in ratios)
    return f"pair ratios {listed}; median {mid:.2f}x: {met} (<= {AIM}x)"


if __name__ == "__main__":
    main()
