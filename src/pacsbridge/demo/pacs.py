"""A local demo PACS: pynetdicom's ``qrscp`` application in a child process.

It answers C-ECHO, C-FIND, C-STORE and C-MOVE and stores into ``<folder>/instances`` with its
own SQLite index. Given ``--database-location`` and ``--instance-location`` it stays out of its
package folder (docs/engineering-notes.md). Ready means answering a C-ECHO, never a sleep.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pacsbridge.dicomnet.echo import c_echo
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.errors import PeerError

CONFIG = """[DEFAULT]
    ae_title: {ae_title}
    port: {port}
    max_pdu: 131072
    acse_timeout: 30
    dimse_timeout: 60
    network_timeout: 60
    bind_address: 127.0.0.1
    instance_location: {instances}
    database_location: {database}
    log_identifier: False

[{move_ae}]
    address: 127.0.0.1
    port: {move_port}
"""


@dataclass
class DemoPacs:
    folder: Path
    port: int
    ae_title: str = "DEMOPACS"
    move_destination: tuple[str, int] = ("PACSBRIDGE", 11112)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def peer(self) -> Peer:
        return Peer(ae_title=self.ae_title, host="127.0.0.1", port=self.port, name="PACS demo")

    def start(self, timeout: float = 30) -> None:
        config = self._write_config()
        log = (self.folder / "qrscp.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pynetdicom", "qrscp", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self._wait_ready(timeout)

    def _write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "instances").mkdir(exist_ok=True)
        config = self.folder / "qrscp.ini"
        config.write_text(
            CONFIG.format(
                ae_title=self.ae_title,
                port=self.port,
                instances=self.folder / "instances",
                database=self.folder / "instances.sqlite",
                move_ae=self.move_destination[0],
                move_port=self.move_destination[1],
            )
        )
        return config

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"demo PACS exited: see {self.folder / 'qrscp.log'}")
            try:
                c_echo(LocalAE(connection_timeout=2), self.peer)
                return
            except PeerError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # polling a child that is starting, not waiting for readiness

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when its parent dies.

    The parent's clean-up stops the demo PACS on an orderly exit; this covers the parent being
    killed outright (SIGKILL, a crash), so no orphaned PACS keeps the port.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
