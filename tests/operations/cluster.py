"""Two or more ``pacsbridge serve`` processes sharing PostgreSQL, Redis and one data folder.

What docs/deployment.md describes, on one host: each node has its own TOML file, web port,
Storage SCP port and AE title (docs/pacs-setup.md, "Several nodes"); the database, the
queue and ``storage.data_dir`` are shared. Besides the nodes:

* :class:`MovingSource`: a counting Q/R source (``jobs.qr_peer``) that records, for each
  C-MOVE, the destination AE it was asked to send to (that is, which node issued it) and
  what it sent; it can hold its first C-MOVE part-way until released;
* :class:`HoldingRelay`: a TCP relay in front of the PACS that stops forwarding after a
  byte budget until released, so a node can be killed in the middle of its C-STOREs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pynetdicom import evt

from conftest import FSE_KEY, RIS_KEY
from jobs.conftest import merge, toml_text, wait_for
from jobs.qr_peer import PENDING, CountingQRSCP, _storage_contexts
from peers.dicom import free_port

START_SECONDS = 60


@dataclass
class Node:
    """One ``pacsbridge serve`` process and its own settings file."""

    name: str
    config: Path
    web_port: int
    ae_title: str
    scp_port: int
    log: Path
    worker: bool = True
    process: subprocess.Popen[bytes] | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.web_port}", timeout=60)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Node:
        argv = [sys.executable, "-m", "pacsbridge", "serve", "--config", str(self.config)]
        if not self.worker:
            argv.append("--no-embedded-worker")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self) -> Node:
        wait_for(self._answers, START_SECONDS, f"node {self.name} to answer /healthz")
        if self.worker:
            wait_for(self.receives, START_SECONDS, f"node {self.name}'s Storage SCP")
        return self

    def kill(self) -> None:
        """SIGKILL: nothing of the process gets to clean up (leases stay until they lapse)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.http.close()

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"node {self.name} exited: {self.log.read_text()[-3000:]}")
        try:
            return self.http.get("/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def receives(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.scp_port)) == 0


class Cluster:
    """Nodes on one shared configuration; ``add(name)`` writes a node's file (not started)."""

    def __init__(self, folder: Path, shared: dict[str, Any]) -> None:
        self.folder = folder
        self.shared = merge(
            {
                "storage": {"data_dir": str(folder / "shared-data")},
                "ris": {"api_keys": [RIS_KEY]},
                "fse": {"api_keys": [FSE_KEY]},
            },
            shared,
        )
        self.nodes: dict[str, Node] = {}

    def add(self, name: str, worker: bool = True) -> Node:
        web_port, scp_port = free_port(), free_port()
        ae_title = f"NODE{name.upper()}"
        values = merge(
            self.shared,
            {
                "web": {"host": "127.0.0.1", "port": web_port},
                "dicom": {"ae_title": ae_title, "host": "127.0.0.1", "port": scp_port},
            },
        )
        config = self.folder / f"node-{name}.toml"
        config.write_text(toml_text(values), encoding="utf-8")
        log = self.folder / f"node-{name}.log"
        node = Node(name, config, web_port, ae_title, scp_port, log, worker=worker)
        self.nodes[name] = node
        return node

    def start(self, *nodes: Node) -> None:
        """Start nodes at once (they migrate the shared database at the same moment)."""
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()

    def node_of(self, worker: str | None) -> str | None:
        """The node whose process an audit ``worker`` (``host:pid``) names."""
        pid = int(worker.rsplit(":", 1)[1]) if worker else -1
        return next((n.name for n in self.nodes.values() if n.process and n.pid == pid), None)

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()


@dataclass
class SeenMove:
    """One C-MOVE as the source saw it: the study, the destination AE, what it sent."""

    study_uid: str
    destination: str
    sent: list[str] = field(default_factory=list)


class MovingSource(CountingQRSCP):
    """Counts C-MOVEs by study and destination; ``hold_first_at`` sent instances holds one.

    A held C-MOVE waits for ``release``; it stops sending when its requestor is gone, as a
    real PACS does when the move's association aborts.
    """

    def __init__(self, send_gap: float = 0.0) -> None:
        self.seen: list[SeenMove] = []
        self.send_gap = send_gap
        self.hold_first_at: int | None = None
        self.release = threading.Event()
        super().__init__(ae_title="MOVESRC")

    def destinations_of(self, study_uid: str) -> list[str]:
        with self._lock:
            return [m.destination for m in self.seen if m.study_uid == study_uid]

    def _move(self, event: evt.Event) -> Iterator[Any]:
        asked = event.identifier
        destination = str(event.move_destination).strip()
        seen = SeenMove(str(asked.get("StudyInstanceUID", "")), destination)
        with self._lock:
            self.moves[seen.study_uid] += 1
            self.seen.append(seen)
            hold, self.hold_first_at = self.hold_first_at, None
        self.move_gate.wait(60)
        address = self.destinations.get(destination)
        if address is None:
            yield None, None
            return
        matched = self._matching(asked)
        yield (*address, {"contexts": _storage_contexts(matched)})
        yield len(matched)
        for ds in matched:
            if hold is not None and len(seen.sent) == hold:
                self.release.wait(60)
            time.sleep(self.send_gap)
            if not event.assoc.is_established:
                return
            yield PENDING, ds
            seen.sent.append(str(ds.SOPInstanceUID))


class HoldingRelay:
    """A TCP relay to ``backend_port``; ``hold_after(n)`` forwards n more bytes, then waits.

    Only the client-to-PACS direction is held (the C-STORE data); answers always flow.
    """

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.released = threading.Event()
        self.released.set()
        self.forwarded = 0
        self._budget: int | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_after(self, more_bytes: int) -> None:
        with self._lock:
            self._budget = self.forwarded + more_bytes
            self.released.clear()

    def release(self) -> None:
        with self._lock:
            self._budget = None
        self.released.set()

    @property
    def holding(self) -> bool:
        with self._lock:
            return self._budget is not None and self.forwarded >= self._budget

    def close(self) -> None:
        self.release()
        self._listener.close()
        for sock in list(self._open):
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.backend_port))
            self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, held: bool) -> None:
        try:
            while chunk := source.recv(4096):
                if held:
                    self._wait_for_budget()
                sink.sendall(chunk)
                if held:
                    with self._lock:
                        self.forwarded += len(chunk)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)

    def _wait_for_budget(self) -> None:
        while True:
            with self._lock:
                if self._budget is None or self.forwarded < self._budget:
                    return
            self.released.wait(0.05)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
