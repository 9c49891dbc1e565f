"""Shared helpers for the bench scripts (not a benchmark itself).

Every measured run happens in its own child process, reaped with ``os.wait4`` so that its peak
RSS (``ru_maxrss``) belongs to that run alone. Our code runs in a child ``python`` that times
only the work (imports excluded) and prints one JSON line; DCMTK tools are timed as whole
processes (their start-up is a few milliseconds).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
REPO = BENCH.parent

# Absolute paths: pynetdicom's console scripts shadow storescp/storescu/movescu in PATH.
STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
DCMQRSCP = "/usr/bin/dcmqrscp"
MOVESCU = "/usr/bin/movescu"
DCMDUMP = "/usr/bin/dcmdump"

HOST = "127.0.0.1"

#: The RIS launch every bench that drives an import sends (POST /api/v1/launch).
LAUNCH = {
    "patient": {
        "id": "IOTELU1234",
        "family_name": "TEST",
        "given_name": "TEST",
        "birth_date": "1974-01-01",
        "sex": "M",
        "issuer": "AO17",
    },
    "order": {"number": "ORD-1", "accession_number": "ACC1"},
    "operator": {"id": "bench", "name": "Bench"},
}


def tool_env() -> dict[str, str]:
    """DCMTK (and Orthanc) read TCP_NODELAY=1; without it they run 10-100x slower."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: _Timed, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.argv[0]} exited with {proc.poll()} while starting")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.argv[0]} did not listen on {port}")


def make_study_files(folder: Path, count: int, rows: int, columns: int) -> list[Path]:
    """``count`` CT-like 16-bit instances as loose Part 10 files, series of up to 100."""
    sys.path.insert(0, str(REPO / "src"))
    from pacsbridge.demo.samples import SampleStudy, write_loose

    per_series = min(100, count)
    series = -(-count // per_series)
    study = SampleStudy(
        series_count=series, instances_per_series=per_series, rows=rows, columns=columns
    )
    paths = write_loose(folder, [study], junk=False)
    for extra in paths[count:]:  # the last series may overshoot
        extra.unlink()
    return paths[:count]


def study_uid_of(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


TIME = "/usr/bin/time"  # GNU time: %M is the peak RSS of the command alone


class _Timed:
    """A command run under GNU ``time`` (so its peak RSS is its own, not inherited from this
    Python process, as ``ru_maxrss`` after fork+exec would be)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None, **kwargs) -> None:
        fd, self.rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        self.argv = argv
        self.cpu_s = float("nan")  # user + system CPU seconds, once the command has ended
        self.proc = subprocess.Popen(
            [TIME, "-f", "%M %U %S", "-o", self.rss_file, *argv], env=env, **kwargs
        )

    def rss_mb(self) -> float:
        """Peak RSS in MB (and ``cpu_s``), read once the command has ended."""
        try:
            text = Path(self.rss_file).read_text().strip().splitlines()
            rss, user, system = text[-1].split()
            self.cpu_s = float(user) + float(system)
            return int(rss) / 1024
        except (OSError, ValueError, IndexError):
            return float("nan")
        finally:
            Path(self.rss_file).unlink(missing_ok=True)

    def poll(self) -> int | None:
        return self.proc.poll()


def popen(argv: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> _Timed:
    """Start a server (its output to ``log``)."""
    if log is None:
        return _Timed(argv, env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return _Timed(argv, env, stdout=out, stderr=subprocess.STDOUT)


def run_child(argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run ``argv`` to the end: wall seconds, peak RSS (MB), return code, output."""
    start = time.perf_counter()
    timed = _Timed(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = timed.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        _signal_children(timed.proc.pid, signal.SIGKILL)
        out, err = timed.proc.communicate()
        raise RuntimeError(
            f"timeout: {argv[:3]}...\n{err.decode(errors='replace')[-2000:]}"
        ) from error
    wall = time.perf_counter() - start
    rss = timed.rss_mb()
    return {
        "wall": wall,
        "rc": timed.proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
        "maxrss_mb": rss,
        "cpu_s": timed.cpu_s,
    }


def _signal_children(pid: int, sig: int) -> None:
    """Signal the command GNU time runs (time itself would die and orphan it)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    for kid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(kid), sig)


def stop(timed: _Timed) -> float:
    """Stop a server started with :func:`popen`; its peak RSS in MB."""
    if timed.proc.poll() is None:
        _signal_children(timed.proc.pid, signal.SIGTERM)
        try:
            timed.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_children(timed.proc.pid, signal.SIGKILL)
            timed.proc.wait()
    return timed.rss_mb()


def child_json(result: dict) -> dict:
    """The last JSON line a child of ours printed (its own timing)."""
    if result["rc"] != 0:
        raise RuntimeError(f"child failed ({result['rc']}):\n{result['stderr'][-3000:]}")
    for line in reversed(result["stdout"].splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(
        f"no JSON from child:\n{result['stdout'][-2000:]}\n{result['stderr'][-2000:]}"
    )


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def busy_warning() -> str:
    """Other work on the machine distorts every figure: say so."""
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        return (
            f"WARNING: 1-minute load average {load1:.2f} on {os.cpu_count()} CPUs before the "
            "run: other work is running, figures are pessimistic and noisy."
        )
    return ""


def row(
    name: str,
    seconds: float,
    instances: int,
    megabytes: float,
    rss_mb: float,
    reference: float | None,
    **extra,
) -> dict:
    return {
        "run": name,
        "seconds": round(seconds, 3),
        "instances": instances,
        "instances_per_s": round(instances / seconds, 1) if seconds else None,
        "mb_per_s": round(megabytes / seconds, 1) if seconds else None,
        "peak_rss_mb": round(rss_mb, 1),
        "ratio_to_dcmtk": round(seconds / reference, 2) if reference else None,
        **extra,
    }


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    head = f"{'run':<34} {'seconds':>8} {'inst/s':>8} {'MB/s':>7} {'RSS MB':>7} {'ours/DCMTK':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = "" if r["ratio_to_dcmtk"] is None else f"{r['ratio_to_dcmtk']:.2f}x"
        mbs = "" if r["mb_per_s"] is None else f"{r['mb_per_s']:.1f}"
        print(
            f"{r['run']:<34} {r['seconds']:>8.3f} {r['instances_per_s']:>8.1f} {mbs:>7} "
            f"{r['peak_rss_mb']:>7.1f} {ratio:>10}"
        )


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dcmtk": _first_line([STORESCU, "--version"]),
        "loadavg_at_end": os.getloadavg(),
    }


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout
        return out.strip().splitlines()[0] if out.strip() else ""
    except OSError:
        return ""


def write_results(
    name: str, params: dict, rows: list[dict], notes: list[str] | None = None
) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now()
    path = RESULTS / f"{name}-{now:%Y-%m-%d}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": name,
                "when": now.isoformat(timespec="seconds"),
                "machine": machine(),
                "params": params,
                "results": rows,
                "notes": notes or [],
            },
            indent=2,
        )
    )
    print(f"\nresults: {path.relative_to(REPO)}")
    return path


def du_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def settle_disk(*received: Path) -> None:
    """Between timed runs: drop what the last run received, then flush every dirty page.

    Each run writes the whole study (158 MB at the defaults). Left in place, those pages are
    written back during the next runs, whichever tool they belong to; on this machine that
    alone spread identical DCMTK runs from 0.5 to 1.1 s. Every run now starts with the same
    clean page cache.
    """
    for folder in received:
        shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def summarise(samples: dict[str, list], instances: int, mb: float) -> list[dict]:
    """Table rows from repeated runs ``(seconds, peak_rss, extra)``: median seconds, max RSS.

    The first entry of ``samples`` is the reference (DCMTK); the others get its ratio.
    """
    measured = []
    for name, runs in samples.items():
        extra = {key: round(median([r[2][key] for r in runs]), 3) for key in runs[0][2]}
        extra["all_seconds"] = [round(r[0], 3) for r in runs]
        measured.append((name, median([r[0] for r in runs]), max(r[1] for r in runs), extra))
    reference = measured[0][1]
    return [
        row(name, sec, instances, mb, rss, None if i == 0 else reference, **extra)
        for i, (name, sec, rss, extra) in enumerate(measured)
    ]
