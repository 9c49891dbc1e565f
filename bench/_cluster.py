"""What bench/two_nodes.py runs against: Orthanc peers, a fresh PostgreSQL and Redis, nodes.

Not a benchmark itself. Everything listens on 127.0.0.1, on free ports:

* :class:`Orthanc`: an Orthanc process with its own folder (the PACS imports go to, and the
  source retrievals come from; C-MOVE destinations set over REST);
* :func:`fresh_database`: a new PostgreSQL database (``postgres@127.0.0.1``, libpq's own
  password lookup), dropped afterwards; :func:`fresh_redis`: a Redis database number, flushed;
* :class:`Node`: one ``pacsbridge serve`` process with its own TOML file, web port, Storage
  SCP port and AE title (docs/deployment.md, "Several nodes"); its peak memory is read from
  ``/proc/<pid>/status`` (``VmHWM``) just before it is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import REPO, free_port, tool_env

ORTHANC = "/usr/sbin/Orthanc"
RIS_KEY, FSE_KEY = "bench-ris", "bench-fse"


class Orthanc:
    """An Orthanc process: ``start()``, ``load(paths)``, ``moves_to(...)``, ``stop()``."""

    def __init__(self, folder: Path, ae_title: str) -> None:
        self.folder, self.ae_title = folder, ae_title
        self.port, self.http_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Orthanc:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": self.ae_title,
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "DicomModalitiesInDatabase": False,
            "DicomScpTimeout": 60,
            "DicomScuTimeout": 60,
            "DicomAssociationCloseDelay": 0,
            "OrthancExplorerEnabled": False,
            "StorageCompression": False,
            "SaveJobs": False,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        log = (self.folder / "orthanc.log").open("wb")
        self.process = subprocess.Popen(
            [ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT, env=tool_env()
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.rest("GET", "/system")
                return self
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()}")

    def rest(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=body, method=method
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=60) as answer:
            data = answer.read()
        return json.loads(data) if data else None

    def load(self, paths: list[Path]) -> None:
        for path in paths:
            self.rest("POST", "/instances", path.read_bytes())

    def moves_to(self, destinations: dict[str, tuple[str, int]]) -> None:
        for ae, (host, port) in destinations.items():
            body = json.dumps({"AET": ae, "Host": host, "Port": port}).encode()
            self.rest("PUT", f"/modalities/{ae.lower()}", body)

    def instance_count(self) -> int:
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # its SQLite index survives; a clean stop takes seconds
            self.process.wait()
            self.process = None


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg2

    name = f"pacsbridge_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def fresh_redis() -> Iterator[str]:
    import redis

    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()


def toml_text(values: dict[str, Any], prefix: str = "") -> str:
    """Tables of scalars and lists, and lists of tables: JSON literals are valid TOML there."""
    plain = {k: v for k, v in values.items() if not isinstance(v, dict) and not _tables(v)}
    text = (f"[{prefix}]\n" if prefix and plain else "") + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in plain.items()
    )
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            text += toml_text(value, name)
        elif _tables(value):
            text += "".join(f"[[{name}]]\n" + toml_text(table) for table in value)
    return text


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


class Node:
    """One ``pacsbridge serve`` process (web, embedded workers, its own Storage SCP)."""

    def __init__(self, name: str, folder: Path, shared: dict[str, Any]) -> None:
        self.name, self.ae_title = name, f"NODE{name.upper()}"
        self.web_port, self.scp_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        own = {
            "web": {"host": "127.0.0.1", "port": self.web_port},
            "dicom": {"ae_title": self.ae_title, "host": "127.0.0.1", "port": self.scp_port},
        }
        self.config = folder / f"node-{name}.toml"
        self.config.write_text(toml_text({**shared, **own}))
        self.log = folder / f"node-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        env = {k: v for k, v in env.items() if not k.startswith("PACSBRIDGE_")}
        argv = [sys.executable, "-m", "pacsbridge", "serve", "--config", str(self.config)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self, http: Any) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(Exception):
                if http.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"node {self.name} did not start: {self.log.read_text()[-2000:]}")

    def peak_memory_mb(self) -> float:
        """``VmHWM``: the process's own peak resident set, read while it still runs."""
        return self._status_mb("VmHWM:")

    def memory_mb(self) -> float:
        """``VmRSS``: its resident set now (before the load: the baseline of the peak)."""
        return self._status_mb("VmRSS:")

    def _status_mb(self, field: str) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
