"""Media analysis speed and memory: pacsbridge.media.inspect(folder) vs DCMTK dcmdump -M.

    python bench/analysis_rate.py [--instances 1000] [--large 20] [--large-size 2048]

1. Rate: ``inspect`` on a folder of N small files (64x64 CT-like) against
   ``/usr/bin/dcmdump -M +sd +r folder`` (every header, pixel data skipped) on the same folder,
   interleaved (dcmdump, ours, dcmdump, ours...): the ratio of each pair, then the median.
2. Memory: peak RSS of ``inspect`` on ``--large`` big files (2048x2048 16-bit, 8 MB each)
   against the same number of small files: it should not grow with file size; and the peak of
   Python allocations during ``inspect`` (tracemalloc, a separate run: it slows the code).

Aim: at least 2,000 files/s and at most 2.0x the time of ``dcmdump``.

Each run is its own process; our child times only ``inspect`` (imports excluded) and peak RSS
is GNU time's %M for that process (interpreter + imports included, ~= the "small" baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

NAME = "analysis_rate"


def worker(args: argparse.Namespace) -> None:
    """Child: inspect(folder); prints seconds and what it found."""
    sys.path.insert(0, str(c.REPO / "src"))
    from pacsbridge.media import inspect

    start = time.perf_counter()
    report = inspect(Path(args.folder))
    seconds = time.perf_counter() - start
    tracemalloc.start()
    inspect(Path(args.folder))
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "instances": len(report.instances),
                "problems": len(report.problems),
                "traced_peak_mb": traced_peak / 1e6,
            }
        )
    )


REPEAT = 3


AIM_RATE, AIM_RATIO = 2000, 2.0


def run_inspect(folder: Path, expected: int) -> tuple[float, float, float]:
    """Median seconds, max RSS, median process wall over REPEAT runs."""
    runs = [_inspect_once(folder, expected) for _ in range(REPEAT)]
    return (c.median([r[0] for r in runs]), max(r[1] for r in runs), c.median([r[2] for r in runs]))


def interleaved(folder: Path, expected: int) -> tuple[list, list]:
    """dcmdump, ours, dcmdump, ours...: (dcmdump runs, our runs)."""
    ref, ours = [], []
    for _ in range(REPEAT):
        ref.append(_dcmdump_once(folder))
        ours.append(_inspect_once(folder, expected))
    return ref, ours


def _inspect_once(folder: Path, expected: int) -> tuple[float, float, float, float]:
    run = c.run_child([sys.executable, __file__, "--worker", "--folder", str(folder)])
    child = c.child_json(run)
    if child["instances"] != expected:
        raise SystemExit(
            f"inspect found {child['instances']} of {expected} "
            f"({child['problems']} problems) in {folder}"
        )
    return child["seconds"], run["maxrss_mb"], run["wall"], child["traced_peak_mb"]


def run_dcmdump(folder: Path) -> tuple[float, float]:
    runs = [_dcmdump_once(folder) for _ in range(REPEAT)]
    return c.median([r[0] for r in runs]), max(r[1] for r in runs)


def _dcmdump_once(folder: Path) -> tuple[float, float]:
    run = c.run_child([c.DCMDUMP, "-q", "-M", "+sd", "+r", str(folder)])
    if run["rc"] != 0:
        raise SystemExit(f"dcmdump failed ({run['rc']}): {run['stderr'][-2000:]}")
    return run["wall"], run["maxrss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--small-size", type=int, default=64)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; median shown")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    global REPEAT
    REPEAT = args.repeat
    rows: list[dict] = []
    warning = c.busy_warning()
    if warning:
        print(warning)
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        small = c.make_study_files(tmp / "small", args.instances, args.small_size, args.small_size)
        few_small = c.make_study_files(
            tmp / "few-small", args.large, args.small_size, args.small_size
        )
        large = c.make_study_files(tmp / "large", args.large, args.large_size, args.large_size)
        mb_small, mb_few, mb_large = c.du_mb(small), c.du_mb(few_small), c.du_mb(large)
        print(
            f"data: {len(small)} small ({mb_small:.0f} MB), {len(large)} large "
            f"{args.large_size}x{args.large_size} ({mb_large:.0f} MB) "
            f"(made in {time.perf_counter() - t0:.1f} s)"
        )

        # 1. rate on many small files (DCMTK first, then ours; page cache warm for both:
        #    the files were just written).
        ref_runs, our_runs = interleaved(tmp / "small", len(small))
        ref, ref_rss = c.median([r[0] for r in ref_runs]), max(r[1] for r in ref_runs)
        sec, rss = c.median([r[0] for r in our_runs]), max(r[1] for r in our_runs)
        wall = c.median([r[2] for r in our_runs])
        ratios = [o[0] / d[0] for d, o in zip(ref_runs, our_runs, strict=True)]
        ratio, traced = c.median(ratios), max(r[3] for r in our_runs)
        rows.append(
            c.row(
                f"dcmdump -M +sd +r, {len(small)} small", ref, len(small), mb_small, ref_rss, None
            )
        )
        rows.append(
            c.row(
                f"inspect, {len(small)} small",
                sec,
                len(small),
                mb_small,
                rss,
                ref,
                process_wall_s=round(wall, 3),
            )
        )

        # 2. memory: same count of small vs large files.
        ref_l, ref_l_rss = run_dcmdump(tmp / "large")
        rows.append(
            c.row(
                f"dcmdump -M +sd +r, {len(large)} large",
                ref_l,
                len(large),
                mb_large,
                ref_l_rss,
                None,
            )
        )
        sec_f, rss_f, wall_f = run_inspect(tmp / "few-small", len(few_small))
        traced_l = _inspect_once(tmp / "large", len(large))[3]
        rows.append(
            c.row(
                f"inspect, {len(few_small)} small",
                sec_f,
                len(few_small),
                mb_few,
                rss_f,
                None,
                process_wall_s=round(wall_f, 3),
            )
        )
        sec_l, rss_l, wall_l = run_inspect(tmp / "large", len(large))
        rows.append(
            c.row(
                f"inspect, {len(large)} large",
                sec_l,
                len(large),
                mb_large,
                rss_l,
                ref_l,
                process_wall_s=round(wall_l, 3),
            )
        )

    growth = rss_l - rss_f
    notes = [
        f"seconds: median of {args.repeat} runs; peak RSS: max.",
        "ours: seconds = inspect() only; process_wall_s adds interpreter start and imports. "
        "dcmdump: whole process (its start-up included), output discarded.",
        f"peak RSS of inspect: {rss_f:.1f} MB on {len(few_small)} small files vs {rss_l:.1f} MB "
        f"on {len(large)} large ({mb_large:.0f} MB): +{growth:.1f} MB "
        f"(one large file is {mb_large / max(1, len(large)):.1f} MB).",
        "MB/s counts whole file sizes, though neither reads the pixel data.",
        f"traced Python peak during inspect: {traced:.2f} MB on {len(small)} small files, "
        f"{traced_l:.2f} MB on {len(large)} large.",
    ]
    rate = len(small) / sec
    met = rate >= AIM_RATE and ratio <= AIM_RATIO
    aim = (
        f"interleaved pairs, ours/dcmdump: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {ratio:.2f}x); ours {rate:,.0f} files/s, dcmdump {len(small) / ref:,.0f} "
        f"files/s. aim (>= {AIM_RATE} files/s and <= {AIM_RATIO}x): "
        + ("aim met" if met else "aim NOT met")
    )
    notes.append(aim)
    c.print_table("Media analysis (headers only), page cache warm", rows)
    notes += [warning] if warning else []
    for note in notes[2:]:
        print(note)
    c.write_results(
        NAME,
        vars(args)
        | {
            "mb_small": round(mb_small, 1),
            "mb_large": round(mb_large, 1),
            "rss_growth_mb": round(growth, 1),
            "median_pair_ratio": round(ratio, 2),
            "aim_met": met,
        },
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
