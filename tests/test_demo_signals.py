"""SIGTERM of ``pacsbridge demo`` stops its demo PACS too: no child survives, the port closes.

uvicorn handles SIGTERM by shutting down and then raising the signal again; with Python's
default handler that killed the demo on the spot and left the demo PACS (a child process)
running with its port open.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pacsbridge.demo.launcher import free_port


def children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found |= {int(child), *children(int(child))}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_demo(tmp_path: Path, web_port: int, pacs_port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pacsbridge", "demo", "--data-dir", str(tmp_path / "demo")]
    options = ["--port", str(web_port), "--pacs-port", str(pacs_port)]
    log = (tmp_path / "demo.log").open("wb")
    return subprocess.Popen([*command, *options], stdout=log, stderr=subprocess.STDOUT)


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pacsbridge demo exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)  # polling a starting child, not waiting for readiness
    pytest.fail(f"pacsbridge demo did not answer:\n{log.read_text()}")


def test_sigterm_of_the_demo_stops_its_demo_pacs_and_every_child(tmp_path: Path) -> None:
    web_port, pacs_port = free_port(), free_port()
    process = start_demo(tmp_path, web_port, pacs_port)
    descendants: set[int] = set()
    try:
        wait_ready(process, f"http://127.0.0.1:{web_port}", tmp_path / "demo.log")
        assert port_open(pacs_port)
        descendants = children(process.pid)
        assert descendants, "the demo PACS runs as a child process"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in descendants) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling processes that are exiting
        assert not [pid for pid in descendants if alive(pid)], "a child survived the demo"
        assert not port_open(pacs_port), "the demo PACS still listens"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in descendants:  # a failed run leaves nothing behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
