"""DICOM TLS peers for the tests: DCMTK storescp/storescu/echoscu with ``+tls`` and Orthanc with
DICOM TLS on, each given certificates from ``peers.pki``.

Fixtures (registered by ``peers.plugin``):

* ``tls_storescp``: ``make(issued, trusted=True, max_pdu=0)`` → :class:`TlsStorescp`, DCMTK
  ``storescp +tls --require-peer-cert`` presenting ``issued`` and trusting the test CA
  (``trusted=False``: ``issued`` is a certificate we refuse, so readiness is "it listens").
* ``tls_orthanc``: ``make(issued, move_destinations)`` → an :class:`TlsOrthanc`, whose DICOM
  port speaks only TLS, which requires a client certificate and which reaches every move
  destination with TLS (``UseDicomTls``).

Readiness is checked with pacsbridge's own TLS C-ECHO, from a node with a trusted certificate
(``ready_identity``): the plain-TCP check of ``peers.dicom`` cannot talk to these.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from peers.dicom import (
    HOST,
    READY_TIMEOUT,
    STORESCP,
    STORESCU,
    ChildProcess,
    OrthancPacs,
    PeerStartError,
    free_port,
    require_tool,
    tool_env,
    track_log,
)
from peers.pki import Issued, Pki

ECHOSCU = "/usr/bin/echoscu"


def identity(issued: Issued) -> Any:
    from pacsbridge.dicomnet.peers import TlsIdentity

    return TlsIdentity(issued.certificate, issued.private_key, issued.ca_certificates)


def local_ae(issued: Issued | None, **options: Any) -> Any:
    """Our LocalAE presenting ``issued`` (short timeouts for tests)."""
    from pacsbridge.dicomnet.peers import LocalAE

    values: dict[str, Any] = {"acse_timeout": 5, "dimse_timeout": 20, "connection_timeout": 3}
    return LocalAE(tls=identity(issued) if issued else None, **{**values, **options})


def tls_peer(ae_title: str, port: int, name: str, server_name: str = "") -> Any:
    from pacsbridge.dicomnet.peers import Peer

    return Peer(ae_title, HOST, port, name, tls=True, tls_server_name=server_name)


def tls_echo_ok(issued: Issued, ae_title: str, port: int) -> bool:
    from pacsbridge.dicomnet.echo import c_echo
    from pacsbridge.errors import PeerError

    try:
        return c_echo(local_ae(issued), tls_peer(ae_title, port, "readiness")) == 0
    except PeerError:
        return False


def dcmtk_tls_args(
    issued: Issued | None, ca_certificates: Path, require_peer_cert: bool = True
) -> list[str]:
    """DCMTK's TLS options: key and certificate (None: anonymous TLS), the trusted CA file.

    The security profile is DCMTK's default, the non-downgrading BCP 195 profile.
    """
    if issued is None:
        args = ["+tla"]
    else:
        args = ["+tls", str(issued.private_key), str(issued.certificate), "-pw"]
    args += ["+cf", str(ca_certificates)]
    args.append("--require-peer-cert" if require_peer_cert else "--ignore-peer-cert")
    return args


def run_dcmtk_client(tool: str, argv: list[str], timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(
        [require_tool(tool, "dcmtk"), *argv],
        env=tool_env(),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def storescu_tls(
    issued: Issued | None, ca: Path, ae_title: str, port: int, paths: list[Path]
) -> tuple[int, str]:
    """DCMTK storescu +tls (``issued`` None: anonymous TLS, no certificate), ordinary files."""
    argv = [*dcmtk_tls_args(issued, ca), "--aetitle", "STORESCU", "--call", ae_title]
    return run_dcmtk_client(STORESCU, [*argv, HOST, str(port), *map(str, paths)])


def echoscu_tls(issued: Issued | None, ca: Path, ae_title: str, port: int) -> tuple[int, str]:
    argv = [*dcmtk_tls_args(issued, ca), "--aetitle", "ECHOSCU", "--call", ae_title]
    return run_dcmtk_client(ECHOSCU, [*argv, HOST, str(port)], timeout=30)


@dataclass(eq=False)
class TlsStorescp:
    """DCMTK ``storescp +tls +uf`` writing what it receives into ``folder``."""

    folder: Path
    issued: Issued
    ready_identity: Issued
    ae_title: str = "STORESCP"
    require_peer_cert: bool = True
    #: False for a certificate we do not trust (untrusted CA, expired): ready once it listens
    ready_by_echo: bool = True
    max_pdu: int = 0  # 0: storescp's default (16 KB)
    port: int = 0
    process: ChildProcess | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.log"

    def peer(self, server_name: str = "") -> Any:
        return tls_peer(self.ae_title, self.port, "test storescp (TLS)", server_name)

    def files(self) -> list[Path]:
        return sorted(path for path in self.folder.iterdir() if path.is_file())

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> TlsStorescp:
        tool = require_tool(STORESCP, "dcmtk")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        tls = dcmtk_tls_args(self.issued, self.issued.ca_certificates, self.require_peer_cert)
        argv = [tool, *tls]
        argv += ["--aetitle", self.ae_title, "--output-directory", str(self.folder), "+uf"]
        argv += ["+xa", "--disable-host-lookup", "--verbose"]
        argv += ["--max-pdu", str(self.max_pdu)] if self.max_pdu else []
        argv.append(str(self.port))
        self.process = ChildProcess("storescp-tls", argv, self.log_path, env=tool_env())
        if self.ready_by_echo:
            _wait(self.process, lambda: tls_echo_ok(self.ready_identity, self.ae_title, self.port))
        else:
            _wait(self.process, lambda: _listens(self.port))
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def _listens(port: int) -> bool:
    """True once something accepts TCP on ``port`` (checked with a connection closed at once)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(process: ChildProcess, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if process.exited() or time.monotonic() > deadline:
            what = "exited while starting" if process.exited() else "did not answer over TLS"
            log = process.log_text()[-4000:]
            process.stop()
            raise PeerStartError(f"{process.label} {what}; log:\n{log}")
        time.sleep(0.1)


@dataclass(eq=False)
class TlsOrthanc(OrthancPacs):
    """Orthanc whose DICOM port speaks only TLS (Orthanc >= 1.9.3 options)."""

    kind: ClassVar[str] = "orthanc"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"accept_compressed", "orthanc_config", "tls"})

    @property
    def _issued(self) -> Issued:
        return self.options["tls"][0]

    @property
    def _ready_identity(self) -> Issued | None:
        return self.options["tls"][1]

    def tls_peer(self, server_name: str = "") -> Any:
        return tls_peer(self.ae_title, self.port, "test PACS (Orthanc, TLS)", server_name)

    def restart_with(self, issued: Issued) -> None:
        """The same Orthanc (port, data) with another certificate; one we may not trust, so
        ready once its HTTP API answers and its DICOM port listens."""
        self.options["tls"] = (issued, None)
        self.start()

    def _command(self) -> list[str]:
        issued = self._issued
        self.options["orthanc_config"] = {
            **self.options.get("orthanc_config", {}),
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(issued.certificate),
            "DicomTlsPrivateKey": str(issued.private_key),
            "DicomTlsTrustedCertificates": str(issued.ca_certificates),
            "DicomTlsRemoteCertificateRequired": True,
        }
        return super()._command()

    def _modalities(self) -> dict[str, Any]:
        return {
            ae.lower(): {"AET": ae, "Host": host, "Port": port, "UseDicomTls": True}
            for ae, (host, port) in self.move_destinations.items()
        }

    def _wait_ready(self) -> None:
        assert self.process is not None
        _wait(self.process, lambda: self._extra_ready() and self._answers())

    def _answers(self) -> bool:
        if self._ready_identity is None:
            return _listens(self.port)
        return tls_echo_ok(self._ready_identity, self.ae_title, self.port)

    def is_healthy(self) -> bool:
        return self.running and self._answers()


@pytest.fixture
def tls_storescp(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Pki
) -> Iterator[Callable[..., TlsStorescp]]:
    made: list[TlsStorescp] = []

    def make(issued: Issued, trusted: bool = True, max_pdu: int = 0) -> TlsStorescp:
        scp = TlsStorescp(
            tmp_path / f"storescp-tls-{len(made) + 1}",
            issued,
            pki.issue("readiness"),
            ready_by_echo=trusted,
            max_pdu=max_pdu,
        )
        made.append(scp)
        track_log(request.node, "storescp (TLS)", scp.log_path)
        try:
            return scp.start()
        except PeerStartError as error:
            pytest.fail(str(error), pytrace=False)

    yield make
    for scp in made:
        scp.stop()


@pytest.fixture
def tls_orthanc(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Pki
) -> Iterator[Callable[..., TlsOrthanc]]:
    made: list[TlsOrthanc] = []

    def make(
        issued: Issued, move_destinations: dict[str, tuple[str, int]] | None = None
    ) -> TlsOrthanc:
        server = TlsOrthanc(
            folder=tmp_path / f"orthanc-tls-{len(made) + 1}",
            move_destinations=dict(move_destinations or {}),
            options={"tls": (issued, pki.issue("readiness"))},
        )
        made.append(server)
        track_log(request.node, "Orthanc (TLS)", server.log_path)
        try:
            server.start()
        except PeerStartError as error:
            pytest.fail(str(error), pytrace=False)
        return server

    yield make
    for server in made:
        server.stop()
