"""Real DICOM peers for the tests: three PACS (DCMTK dcmqrscp, Orthanc, pynetdicom qrscp) and
DCMTK storescp, each a child process on 127.0.0.1 with free ports and its own tmp folder.

Fixtures (registered by ``peers.plugin``):

* ``pacs``: parametrised over ``KINDS`` (ids = kind); a started :class:`RunningPacs`, AE title
  ``PACS``, that answers C-ECHO, C-STORE, C-FIND and C-MOVE from any calling AE and moves to
  ``PACSBRIDGE`` at ``our_scp_address``. ``dcmqrscp_pacs``, ``orthanc_pacs``,
  ``pynetdicom_pacs``: the same, one kind each. These PACS are shared within an xdist worker
  (started once, health-checked and re-pointed at the test's ``our_scp_address`` before every
  test), so they hold the studies of earlier tests too: use fresh UIDs/patient IDs, or
  ``pacs.clear()``, or ``pacs_factory`` for a private one.
* ``pacs_factory``: ``make(kind, ae_title="PACS", move_destinations=None, **options)``; a
  private, started PACS stopped after the test. Options: ``accept_compressed`` (default
  True), ``extra_args`` (dcmqrscp, pynetdicom: more command-line arguments), ``orthanc_config``
  (Orthanc: entries merged into its JSON configuration), ``serialize_stores`` (dcmqrscp,
  default True: see below).
* ``our_scp_address``: ``(host, port)`` free for the test's own Storage SCP (AE PACSBRIDGE).
* ``storescp``: ``make(ae_title="STORESCP", accept_compressed=True)`` → :class:`RunningStorescp`.

DCMTK tools are always called by absolute path (pynetdicom installs console scripts with the
same names) and every DCMTK/Orthanc process gets ``TCP_NODELAY=1``. A missing tool fails the
fixture; nothing here skips.

How the three differ (DCMTK 3.6.7, Orthanc 1.10.1, pynetdicom 3.0.4), as found here:

* dcmqrscp: an IMAGE-level query needs a SeriesInstanceUID key (else 0xC000), a Patient Root
  STUDY-level query needs PatientID (0xC000); it cannot decompress, so compressed instances it
  holds fail to move (0xA702, every sub-operation failed); two associations storing at the
  same moment can lose instances (its file names come from time(NULL): a DCMTK race) and
  ``--single-process`` crashes after the first association, so clients reach it through a
  proxy that admits one storage association at a time (``peers._store_proxy``).
* pynetdicom qrscp: STUDY/SERIES-level C-FIND answers once per *instance* (duplicates); IMAGE
  without SeriesInstanceUID and Patient Root without PatientID answer 0xA900; it starts in
  1-2.5 s and is the slowest to answer.
* Orthanc: answers every query form; ``load()`` goes through REST, which negotiates nothing,
  so ``accept_compressed=False`` only affects DICOM associations. Stopping it cleanly takes
  ~3.5 s, so it is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from peers._pynetdicom_fixes import patch_association
from peers._store_proxy import StoreSerializingProxy

__all__ = [
    "HOST",
    "KINDS",
    "MOVE_DESTINATION_AE",
    "NODELAY_HANDLERS",
    "DcmqrscpPacs",
    "LoadError",
    "OrthancPacs",
    "PeerStartError",
    "PynetdicomPacs",
    "RunningPacs",
    "RunningStorescp",
    "c_store_files",
    "dcmqrscp_pacs",
    "free_port",
    "make_peer",
    "orthanc_pacs",
    "our_scp_address",
    "pacs",
    "pacs_factory",
    "pynetdicom_pacs",
    "scan_instance_uids",
    "storescp",
    "tune",
]

HOST = "127.0.0.1"
KINDS = ("dcmqrscp", "orthanc", "pynetdicom")
PACS_AE = "PACS"
MOVE_DESTINATION_AE = "PACSBRIDGE"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 6000

DCMQRSCP = "/usr/bin/dcmqrscp"
STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
ORTHANC = "/usr/sbin/Orthanc"
QRSCP_WRAPPER = Path(__file__).with_name("_qrscp.py")

UNCOMPRESSED = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)
#: What the PACS accept when ``accept_compressed`` (DCMTK's "AnyTransferSyntax" minus video).
COMPRESSED = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
)
QR_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
)


class PeerStartError(RuntimeError):
    """A peer did not start (or is missing); the message carries its log."""


class LoadError(RuntimeError):
    """Putting instances onto a PACS failed (e.g. it refused a transfer syntax)."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def make_peer(ae_title: str, host: str, port: int, name: str) -> Any:
    """A ``pacsbridge.dicomnet.peers.Peer``, imported only when asked for.

    While that module does not exist yet (it is being written) a stand-in frozen dataclass
    with the same four fields is returned, so the peers can be tested on their own.
    """
    try:
        from pacsbridge.dicomnet.peers import Peer
    except ModuleNotFoundError as exc:
        if exc.name not in ("pacsbridge.dicomnet.peers", "pacsbridge.dicomnet"):
            raise
        return _StandInPeer(ae_title=ae_title, host=host, port=port, name=name)
    return Peer(ae_title=ae_title, host=host, port=port, name=name)


@dataclass(frozen=True)
class _StandInPeer:
    ae_title: str
    host: str
    port: int
    name: str


def free_port() -> int:
    """A TCP port nobody uses now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, reuse: bool = False) -> bool:
    """True when ``port`` can be bound right now: nobody listens on it and, unless ``reuse``
    (servers that set SO_REUSEADDR, as pynetdicom's do), no connection lingers in TIME_WAIT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if reuse:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


def require_tool(path: str, package: str) -> str:
    if not os.access(path, os.X_OK):
        raise PeerStartError(
            f"{path} is missing: the DICOM peer fixtures need Debian's {package} "
            "(run scripts/install-test-deps)"
        )
    return path


def tool_env() -> dict[str, str]:
    """Environment for DCMTK/Orthanc: TCP_NODELAY=1 or they run 10-100x slower."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env


def tune(assoc: Association) -> Association:
    """TCP_NODELAY plus a guard against pynetdicom's reactor race, for an established
    association the tests make (see ``peers._pynetdicom_fixes``)."""
    return patch_association(assoc)


def _on_conn_open(event: evt.Event) -> None:
    tune(event.assoc)


#: Bind with ``AE.start_server(..., evt_handlers=[*NODELAY_HANDLERS, ...])`` so a test's own
#: SCP answers without Nagle delays.
NODELAY_HANDLERS = [(evt.EVT_CONN_OPEN, _on_conn_open)]


def scan_instance_uids(folder: Path, study_uid: str | None = None) -> set[str]:
    """SOP Instance UIDs of the DICOM files under ``folder`` (of one study if given)."""
    uids: set[str] = set()
    if not folder.exists():
        return uids
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            ds = dcmread(
                path, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SOPInstanceUID"]
            )
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        sop_uid = ds.get("SOPInstanceUID")
        if sop_uid and (study_uid is None or ds.get("StudyInstanceUID") == study_uid):
            uids.add(str(sop_uid))
    return uids


def c_store_files(
    ae_title: str, host: str, port: int, paths: Iterable[Path], calling_ae: str = "LOADER"
) -> None:
    """C-STORE Part 10 files with pynetdicom, each in its own transfer syntax."""
    files = [(Path(path), dcmread(path, stop_before_pixels=True)) for path in paths]
    contexts = sorted(
        {
            (str(ds.file_meta.MediaStorageSOPClassUID), str(ds.file_meta.TransferSyntaxUID))
            for _, ds in files
        }
    )
    for start in range(0, len(contexts), 120):
        chunk = set(contexts[start : start + 120])
        ae = AE(calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        for sop_class, syntax in sorted(chunk):
            ae.add_requested_context(sop_class, syntax)
        assoc = ae.associate(host, port, ae_title=ae_title)
        if not assoc.is_established:
            raise LoadError(f"C-STORE association to {ae_title}@{host}:{port} failed")
        tune(assoc)
        try:
            for path, meta in files:
                key = (
                    str(meta.file_meta.MediaStorageSOPClassUID),
                    str(meta.file_meta.TransferSyntaxUID),
                )
                if key not in chunk:
                    continue
                status = assoc.send_c_store(dcmread(path))
                code = getattr(status, "Status", None)
                if code is None or (code != 0 and (code & 0xF000) != 0xB000):
                    raise LoadError(f"C-STORE of {path} to {ae_title}: status {code!r}")
        finally:
            assoc.release()


def c_echo_status(host: str, port: int, called_ae: str, timeout: float = 2.0) -> int | None:
    """The C-ECHO status (0 = success), or None when no association could be made."""
    ae = AE("READYCHECK")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        return None
    try:
        tune(assoc)
        status = assoc.send_c_echo()
        return getattr(status, "Status", None)
    finally:
        assoc.release()


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------


class ChildProcess:
    """One child in its own process group, output to a log file; stop() ends the group.

    The leader is never reaped before the group is killed (``waitid(WNOWAIT)``), so the group
    id cannot have been recycled: only processes we started are ever signalled.
    """

    def __init__(
        self,
        label: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str],
        cwd: Path | None = None,
        grace: float = STOP_TIMEOUT,
    ) -> None:
        self.label = label
        self.grace = grace  # seconds between SIGTERM and SIGKILL
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None and info.si_pid != 0

    def stop(self) -> None:
        _LIVE.discard(self)
        if self.popen.returncode is not None:
            return
        if not self.exited() and self.grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            while not self.exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        # The leader is at most a zombie here, so its group id is still ours: sweep the group
        # (dcmqrscp's forked children) before reaping.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)

    def log_text(self, offset: int = 0) -> str:
        return read_log(self.log_path, offset)


#: Children not stopped yet; stopped at interpreter exit should a teardown never run.
_LIVE: set[ChildProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    for child in list(_LIVE):
        with contextlib.suppress(Exception):
            child.stop()


def read_log(path: Path, offset: int = 0) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(text: str) -> str:
    return text if len(text) <= LOG_TAIL else "...\n" + text[-LOG_TAIL:]


# --------------------------------------------------------------------------------------------
# PACS
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RunningPacs:
    """A PACS child process. Subclasses: :class:`DcmqrscpPacs`, :class:`OrthancPacs`,
    :class:`PynetdicomPacs`."""

    kind: ClassVar[str] = ""
    #: Seconds a stopping server gets after SIGTERM before SIGKILL.
    STOP_GRACE: ClassVar[float] = STOP_TIMEOUT
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"accept_compressed"})

    folder: Path
    ae_title: str = PACS_AE
    move_destinations: dict[str, tuple[str, int]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    host: str = HOST
    port: int = 0
    process: ChildProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.options) - self.OPTIONS
        if unknown:
            raise TypeError(
                f"{self.kind} PACS: unknown options {sorted(unknown)}; "
                f"known: {sorted(self.OPTIONS)}"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.move_destinations = {
            ae: (host, int(port)) for ae, (host, port) in self.move_destinations.items()
        }

    # -- public API ---------------------------------------------------------------------------

    @property
    def peer(self) -> Any:
        """``pacsbridge.dicomnet.peers.Peer`` for this PACS."""
        return make_peer(self.ae_title, self.host, self.port, f"test PACS ({self.kind})")

    @property
    def storage_dir(self) -> Path:
        return self.folder / "storage"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.kind}.log"

    @property
    def accept_compressed(self) -> bool:
        return bool(self.options.get("accept_compressed", True))

    @property
    def running(self) -> bool:
        return self.process is not None and not self.process.exited()

    def start(self) -> RunningPacs:
        """Start (or restart) the server and wait until it answers a C-ECHO."""
        self.stop()
        error: PeerStartError | None = None
        for attempt in range(3):
            if attempt or not self.port or not port_is_free(self.port, reuse=True):
                self._allocate_ports()
            try:
                self._open_front()
            except OSError as exc:  # our port was taken meanwhile: try others
                error = PeerStartError(f"{self.kind}: cannot listen on {self.port}: {exc}")
                continue
            self.process = ChildProcess(
                self.kind,
                self._command(),
                self.log_path,
                env=self._env(),
                cwd=self.folder,
                grace=self.STOP_GRACE,
            )
            try:
                self._wait_ready()
                return self
            except PeerStartError as exc:
                error = exc
                exited = self.process.exited()
                self.stop()
                if not exited:  # hung rather than died (as when a port is taken): no retry
                    break
        assert error is not None
        raise error

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        self._close_front()

    def clear(self) -> None:
        """Forget every stored instance (restarts the server on an empty store)."""
        self.stop()
        for name in self._data_dirs():
            shutil.rmtree(self.folder / name, ignore_errors=True)
        self.start()

    def register_move_destination(self, ae_title: str, host: str, port: int) -> None:
        """Add or change a C-MOVE destination (restarts the server when it cannot reload)."""
        self.set_move_destinations({**self.move_destinations, ae_title: (host, int(port))})

    def set_move_destinations(self, destinations: dict[str, tuple[str, int]]) -> None:
        self.move_destinations = {
            ae: (host, int(port)) for ae, (host, port) in destinations.items()
        }
        if self.running:
            self.start()

    def load(self, paths: Iterable[Path]) -> None:
        """Put Part 10 files onto the PACS through its own means (raises LoadError)."""
        raise NotImplementedError

    def instance_uids(self, study_uid: str) -> set[str]:
        """SOP Instance UIDs the PACS holds for ``study_uid``."""
        return scan_instance_uids(self.storage_dir, study_uid)

    def log_text(self, offset: int = 0) -> str:
        return read_log(self.log_path, offset)

    def is_healthy(self) -> bool:
        return self.running and c_echo_status(self.host, self.port, self.ae_title) == 0

    # -- for subclasses -----------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        self.port = free_port()

    def _env(self) -> dict[str, str]:
        return tool_env()

    def _open_front(self) -> None:
        """Start whatever listens on ``port`` in front of the server (nothing by default)."""

    def _close_front(self) -> None:
        pass

    def _data_dirs(self) -> tuple[str, ...]:
        return ("storage",)

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _extra_ready(self) -> bool:
        return True

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.exited():
                raise self._start_error("exited while starting")
            if (
                _accepts_tcp(self.host, self.port)
                and c_echo_status(self.host, self.port, self.ae_title, timeout=2) == 0
                and self._extra_ready()
            ):
                return
            if time.monotonic() > deadline:
                raise self._start_error(f"did not answer a C-ECHO within {READY_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _start_error(self, what: str) -> PeerStartError:
        return PeerStartError(
            f"{self.kind} PACS {self.ae_title}@{self.host}:{self.port} {what}.\n"
            f"command: {' '.join(self.process.argv) if self.process else '?'}\n"
            f"log ({self.log_path}):\n{_tail(self.log_text())}"
        )


# -- DCMTK dcmqrscp ---------------------------------------------------------------------------

DCMQRSCP_CFG = """\
# written by tests/peers/dicom.py
NetworkTCPPort  = {port}
MaxPDUSize      = 65536
MaxAssociations = 16

HostTable BEGIN
{hosts}
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{ae_title}  {storage}  RW  (500, 1024mb)  ANY
AETable END
"""


@dataclass(eq=False)
class DcmqrscpPacs(RunningPacs):
    """DCMTK's ``dcmqrscp``: files in ``storage_dir`` plus its ``index.dat``.

    With ``accept_compressed`` (default) an association profile (``-xf``) accepts every
    storage SOP class in the uncompressed and the usual compressed transfer syntaxes;
    without it dcmqrscp's default applies: uncompressed only. With ``serialize_stores``
    (default) clients reach it through :class:`StoreSerializingProxy`, which lets one storage
    association in at a time (dcmqrscp loses instances stored in parallel); ``False`` exposes
    dcmqrscp itself on ``port``.
    """

    kind: ClassVar[str] = "dcmqrscp"
    OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"accept_compressed", "extra_args", "serialize_stores"}
    )

    backend_port: int = 0
    proxy: StoreSerializingProxy | None = field(default=None, repr=False)

    @property
    def serialize_stores(self) -> bool:
        return bool(self.options.get("serialize_stores", True))

    def _allocate_ports(self) -> None:
        self.port = free_port()
        self.backend_port = 0

    def _listen_port(self) -> int:
        if not self.serialize_stores:
            return self.port
        if not self.backend_port or not port_is_free(self.backend_port, reuse=True):
            self.backend_port = free_port()
        return self.backend_port

    def _open_front(self) -> None:
        if self.serialize_stores and self.proxy is None:
            self.proxy = StoreSerializingProxy(self.host, self.port, self._listen_port())

    def _close_front(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None

    def _command(self) -> list[str]:
        tool = require_tool(DCMQRSCP, "dcmtk")
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        hosts = "\n".join(
            f"dest{index} = ({ae}, {host}, {port})"
            for index, (ae, (host, port)) in enumerate(sorted(self.move_destinations.items()))
        )
        config = self.folder / "dcmqrscp.cfg"
        config.write_text(
            DCMQRSCP_CFG.format(
                port=self.proxy.backend_port if self.proxy else self.port,
                hosts=hosts,
                ae_title=self.ae_title,
                storage=self.storage_dir,
            )
        )
        argv = [tool, "-c", str(config), "--disable-host-lookup", "--verbose"]
        if self.accept_compressed:
            profile = self.folder / "association.cfg"
            profile.write_text(_dcmtk_association_profile())
            argv += ["--assoc-config-file", str(profile), "Incoming", "Outgoing"]
        argv += list(self.options.get("extra_args", ()))
        return argv

    def load(self, paths: Iterable[Path]) -> None:
        """C-STORE with DCMTK storescu, proposing exactly each file's SOP class and transfer
        syntax (an ``-xf`` profile: storescu's own options propose one compressed TS at most)."""
        tool = require_tool(STORESCU, "dcmtk")
        by_context: dict[tuple[str, str], list[str]] = {}
        for path in paths:
            meta = dcmread(path, stop_before_pixels=True).file_meta
            key = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
            by_context.setdefault(key, []).append(str(path))
        contexts = sorted(by_context)
        for first in range(0, len(contexts), 100):
            chunk = contexts[first : first + 100]
            profile = self.folder / "storescu.cfg"
            profile.write_text(_storescu_profile(chunk))
            files = [file for context in chunk for file in by_context[context]]
            for start in range(0, len(files), 200):
                argv = [
                    tool,
                    "--aetitle",
                    "LOADER",
                    "--call",
                    self.ae_title,
                    "--config-file",
                    str(profile),
                    "Load",
                    self.host,
                    str(self.port),
                    *files[start : start + 200],
                ]
                done = subprocess.run(
                    argv, env=tool_env(), capture_output=True, timeout=120, check=False
                )
                output = (done.stdout + done.stderr).decode("utf-8", "replace")
                if done.returncode != 0 or "E: " in output:
                    raise LoadError(f"storescu to dcmqrscp failed ({done.returncode}):\n{output}")


def _storescu_profile(contexts: list[tuple[str, str]]) -> str:
    syntaxes = sorted({syntax for _, syntax in contexts})
    lines = ["[[TransferSyntaxes]]"]
    for index, syntax in enumerate(syntaxes):
        lines += [f"[TS{index}]", f"TransferSyntax1 = {syntax}"]
    lines += ["[[PresentationContexts]]", "[Load]"]
    lines += [
        f"PresentationContext{number} = {sop_class}\\TS{syntaxes.index(syntax)}"
        for number, (sop_class, syntax) in enumerate(contexts, 1)
    ]
    lines += ["[[Profiles]]", "[Load]", "PresentationContexts = Load", ""]
    return "\n".join(lines)


def _dcmtk_association_profile() -> str:
    """An ``-xf`` file for dcmqrscp: Q/R + verification + storage in any transfer syntax."""
    lines = ["[[TransferSyntaxes]]", "[Uncompressed]"]
    lines += [f"TransferSyntax{i} = {uid}" for i, uid in enumerate(UNCOMPRESSED, 1)]
    lines += ["[Any]"]
    lines += [f"TransferSyntax{i} = {uid}" for i, uid in enumerate(UNCOMPRESSED + COMPRESSED, 1)]
    lines += ["", "[[PresentationContexts]]", "[Incoming]"]
    incoming = [f"{Verification}\\Uncompressed"]
    incoming += [f"{model}\\Uncompressed" for model in QR_MODELS]
    incoming += [f"{cx.abstract_syntax}\\Any" for cx in StoragePresentationContexts]
    incoming = incoming[:128]
    lines += [f"PresentationContext{i} = {value}" for i, value in enumerate(incoming, 1)]
    lines += ["[Outgoing]"]
    outgoing = [f"{cx.abstract_syntax}\\Uncompressed" for cx in StoragePresentationContexts]
    lines += [f"PresentationContext{i} = {value}" for i, value in enumerate(outgoing[:128], 1)]
    lines += [
        "",
        "[[Profiles]]",
        "[Incoming]",
        "PresentationContexts = Incoming",
        "[Outgoing]",
        "PresentationContexts = Outgoing",
        "",
    ]
    return "\n".join(lines)


# -- Orthanc ----------------------------------------------------------------------------------


@dataclass(eq=False)
class OrthancPacs(RunningPacs):
    """Orthanc with its own SQLite index and storage, no plugins, REST on ``http_port``."""

    kind: ClassVar[str] = "orthanc"
    #: Orthanc needs ~3.5 s to stop cleanly; its SQLite index survives a SIGKILL.
    STOP_GRACE: ClassVar[float] = 0.0
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"accept_compressed", "orthanc_config"})

    http_port: int = 0

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def _allocate_ports(self) -> None:
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()

    def _data_dirs(self) -> tuple[str, ...]:
        return ("storage", "index")

    def _command(self) -> list[str]:
        tool = require_tool(ORTHANC, "orthanc")
        if not self.http_port or not port_is_free(self.http_port, reuse=True):
            self._allocate_ports()
        config: dict[str, Any] = {
            "Name": f"PACS-{self.folder.name}",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "HttpCompressionEnabled": False,
            "DicomServerEnabled": True,
            "DicomModalities": self._modalities(),
            "DicomModalitiesInDatabase": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowGet": True,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "UnknownSopClassAccepted": True,
            "Plugins": [],
            "LuaScripts": [],
            "DicomScpTimeout": 30,
            "DicomScuTimeout": 30,
            "DicomAssociationCloseDelay": 0,
            "StableAge": 1,
            "SaveJobs": False,
            "StorageCompression": False,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
        }
        if not self.accept_compressed:
            config["AcceptedTransferSyntaxes"] = list(UNCOMPRESSED)
        config.update(self.options.get("orthanc_config", {}))
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        return [tool, str(path)]

    def _modalities(self) -> dict[str, list[Any]]:
        return {ae.lower(): [ae, host, port] for ae, (host, port) in self.move_destinations.items()}

    def _extra_ready(self) -> bool:
        try:
            self.rest("GET", "/system", timeout=2)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def set_move_destinations(self, destinations: dict[str, tuple[str, int]]) -> None:
        old = self._modalities()
        self.move_destinations = {
            ae: (host, int(port)) for ae, (host, port) in destinations.items()
        }
        if not self.running:
            return
        new = self._modalities()
        for name in set(old) - set(new):
            self.rest("DELETE", f"/modalities/{name}")
        for name, (ae, host, port) in new.items():
            if old.get(name) != [ae, host, port]:
                self.rest(
                    "PUT",
                    f"/modalities/{name}",
                    json.dumps({"AET": ae, "Host": host, "Port": port}).encode(),
                )

    def rest(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Any:
        """Call Orthanc's REST API; returns the decoded JSON (or None)."""
        request = urllib.request.Request(
            self.http_url + path, data=body, method=method, headers={"Content-Type": content_type}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=timeout) as answer:
            data = answer.read()
        return json.loads(data) if data else None

    def load(self, paths: Iterable[Path]) -> None:
        for path in paths:
            try:
                answer = self.rest(
                    "POST", "/instances", Path(path).read_bytes(), content_type="application/dicom"
                )
            except urllib.error.HTTPError as exc:
                raise LoadError(
                    f"Orthanc refused {path}: {exc.code} {exc.read().decode('utf-8', 'replace')}"
                ) from exc
            if answer.get("Status") not in ("Success", "AlreadyStored"):
                raise LoadError(f"Orthanc refused {path}: {answer}")

    def instance_uids(self, study_uid: str) -> set[str]:
        found = self.rest(
            "POST",
            "/tools/find",
            json.dumps(
                {
                    "Level": "Instance",
                    "Expand": True,
                    "Query": {"StudyInstanceUID": study_uid},
                }
            ).encode(),
        )
        return {item["MainDicomTags"]["SOPInstanceUID"] for item in found}


# -- pynetdicom qrscp -------------------------------------------------------------------------

QRSCP_INI = """\
[DEFAULT]
    ae_title: {ae_title}
    port: {port}
    max_pdu: 131072
    acse_timeout: 30
    dimse_timeout: 60
    network_timeout: 60
    bind_address: {host}
    instance_location: {instances}
    database_location: {database}
    log_identifier: False
{destinations}"""


@dataclass(eq=False)
class PynetdicomPacs(RunningPacs):
    """pynetdicom's ``qrscp`` app (run via ``_qrscp.py`` for TCP_NODELAY) with SQLite index."""

    kind: ClassVar[str] = "pynetdicom"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"accept_compressed", "extra_args"})

    def _data_dirs(self) -> tuple[str, ...]:
        return ("storage", "index")

    def _command(self) -> list[str]:
        for module in ("pynetdicom", "sqlalchemy"):
            if importlib.util.find_spec(module) is None:
                raise PeerStartError(
                    f"Python package {module} is missing: pynetdicom's qrscp "
                    "needs it (pip install -e '.[test]')"
                )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        (self.folder / "index").mkdir(parents=True, exist_ok=True)
        database = self.folder / "index" / "instances.sqlite"
        destinations = "".join(
            f"\n[{ae}]\n    address: {host}\n    port: {port}\n"
            for ae, (host, port) in sorted(self.move_destinations.items())
        )
        config = self.folder / "qrscp.ini"
        config.write_text(
            QRSCP_INI.format(
                ae_title=self.ae_title,
                port=self.port,
                host=self.host,
                instances=self.storage_dir,
                database=database,
                destinations=destinations,
            )
        )
        argv = [sys.executable, str(QRSCP_WRAPPER)]
        if not self.accept_compressed:
            argv.append("--uncompressed-only")
        argv += [
            "-c",
            str(config),
            "--instance-location",
            str(self.storage_dir),
            "--database-location",
            str(database),
            "--log-level",
            "info",
        ]
        argv += list(self.options.get("extra_args", ()))
        return argv

    def load(self, paths: Iterable[Path]) -> None:
        c_store_files(self.ae_title, self.host, self.port, paths)


PACS_CLASSES: dict[str, type[RunningPacs]] = {
    cls.kind: cls for cls in (DcmqrscpPacs, OrthancPacs, PynetdicomPacs)
}


def new_pacs(
    kind: str,
    folder: Path,
    ae_title: str = PACS_AE,
    move_destinations: dict[str, tuple[str, int]] | None = None,
    **options: Any,
) -> RunningPacs:
    try:
        cls = PACS_CLASSES[kind]
    except KeyError:
        raise ValueError(f"unknown PACS kind {kind!r}; known: {', '.join(KINDS)}") from None
    return cls(
        folder=folder,
        ae_title=ae_title,
        move_destinations=dict(move_destinations or {}),
        options=options,
    )


# -- storescp ---------------------------------------------------------------------------------


@dataclass(eq=False)
class RunningStorescp:
    """DCMTK ``storescp +uf`` writing every received instance into ``folder``."""

    folder: Path
    ae_title: str = "STORESCP"
    accept_compressed: bool = True
    max_pdu: int = 0  # 0: storescp's default (16 KB)
    fork: bool = False  # --fork: one child process per association
    host: str = HOST
    port: int = 0
    process: ChildProcess | None = field(default=None, repr=False)

    @property
    def peer(self) -> Any:
        return make_peer(self.ae_title, self.host, self.port, "test storescp")

    @property
    def log_path(self) -> Path:
        return self.folder.parent / f"{self.folder.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and not self.process.exited()

    def files(self) -> list[Path]:
        """Files received so far (sorted)."""
        return sorted(path for path in self.folder.iterdir() if path.is_file())

    def instance_uids(self) -> set[str]:
        return scan_instance_uids(self.folder)

    def log_text(self, offset: int = 0) -> str:
        return read_log(self.log_path, offset)

    def start(self) -> RunningStorescp:
        tool = require_tool(STORESCP, "dcmtk")
        self.stop()
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.port or not port_is_free(self.port, reuse=True):
            self.port = free_port()
        argv = [
            tool,
            "--aetitle",
            self.ae_title,
            "--output-directory",
            str(self.folder),
            "+uf",
            "--disable-host-lookup",
            "--verbose",
        ]
        if self.accept_compressed:
            argv.append("+xa")
        if self.max_pdu:
            argv += ["--max-pdu", str(self.max_pdu)]
        if self.fork:
            argv.append("--fork")
        argv.append(str(self.port))
        self.process = ChildProcess("storescp", argv, self.log_path, env=tool_env())
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.exited() or time.monotonic() > deadline:
                what = "exited while starting" if self.process.exited() else "did not answer"
                self.stop()
                raise PeerStartError(
                    f"storescp {self.ae_title}@{self.host}:{self.port} {what}; "
                    f"log:\n{_tail(self.log_text())}"
                )
            if (
                _accepts_tcp(self.host, self.port)
                and c_echo_status(self.host, self.port, self.ae_title) == 0
            ):
                return self
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

#: item.stash[PEER_LOGS]: (label, log path, size at test start) of the peers a test used;
#: plugin.py appends what they logged during a failing test to its report.
PEER_LOGS = pytest.StashKey[list[tuple[str, Path, int]]]()


def track_log(node: pytest.Item, label: str, path: Path) -> None:
    node.stash.setdefault(PEER_LOGS, []).append((label, path, log_size(path)))


def _started(start: Callable[[], Any]) -> Any:
    try:
        return start()
    except PeerStartError as exc:
        pytest.fail(str(exc), pytrace=False)


class _SharedPacs:
    """The worker's shared PACS, one per kind, started on first use."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.servers: dict[str, RunningPacs] = {}

    def get(self, kind: str, destinations: dict[str, tuple[str, int]]) -> RunningPacs:
        server = self.servers.get(kind)
        if server is None:
            server = new_pacs(
                kind, self.tmp_path_factory.mktemp(f"shared-{kind}"), move_destinations=destinations
            )
            self.servers[kind] = server
            _started(server.start)
            return server
        if not server.is_healthy():
            server.move_destinations = dict(destinations)
            _started(server.start)
        elif server.move_destinations != destinations:
            _started(lambda: server.set_move_destinations(destinations))
        return server

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def _shared_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SharedPacs]:
    shared = _SharedPacs(tmp_path_factory)
    yield shared
    shared.close()


@pytest.fixture(scope="session")
def _scp_port() -> dict[str, int]:
    return {}


@pytest.fixture
def our_scp_address(_scp_port: dict[str, int]) -> tuple[str, int]:
    """(host, port) for the test's own Storage SCP, AE PACSBRIDGE; free at test start.

    The port stays the same from test to test while nobody listens on it, so the shared PACS
    need not be reconfigured every time; connections of earlier tests may linger in TIME_WAIT,
    which SCPs made with pynetdicom (SO_REUSEADDR) do not mind.
    """
    port = _scp_port.get("port")
    if port is None or not port_is_free(port, reuse=True):
        port = _scp_port["port"] = free_port()
    return (HOST, port)


def _shared_fixture(
    kind: str, request: pytest.FixtureRequest, shared: _SharedPacs, address: tuple[str, int]
) -> RunningPacs:
    server = shared.get(kind, {MOVE_DESTINATION_AE: address})
    track_log(request.node, f"{kind} PACS", server.log_path)
    return server


@pytest.fixture(params=KINDS, ids=KINDS)
def pacs(
    request: pytest.FixtureRequest, _shared_pacs: _SharedPacs, our_scp_address: tuple[str, int]
) -> RunningPacs:
    """A started PACS of each kind (AE PACS), moving to PACSBRIDGE at our_scp_address."""
    return _shared_fixture(request.param, request, _shared_pacs, our_scp_address)


@pytest.fixture
def dcmqrscp_pacs(
    request: pytest.FixtureRequest, _shared_pacs: _SharedPacs, our_scp_address: tuple[str, int]
) -> RunningPacs:
    return _shared_fixture("dcmqrscp", request, _shared_pacs, our_scp_address)


@pytest.fixture
def orthanc_pacs(
    request: pytest.FixtureRequest, _shared_pacs: _SharedPacs, our_scp_address: tuple[str, int]
) -> RunningPacs:
    return _shared_fixture("orthanc", request, _shared_pacs, our_scp_address)


@pytest.fixture
def pynetdicom_pacs(
    request: pytest.FixtureRequest, _shared_pacs: _SharedPacs, our_scp_address: tuple[str, int]
) -> RunningPacs:
    return _shared_fixture("pynetdicom", request, _shared_pacs, our_scp_address)


@pytest.fixture
def pacs_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., RunningPacs]]:
    """``make(kind, ae_title="PACS", move_destinations=None, **options)``: a private started
    PACS in this test's tmp dir; all are stopped after the test."""
    made: list[RunningPacs] = []

    def make(
        kind: str,
        ae_title: str = PACS_AE,
        move_destinations: dict[str, tuple[str, int]] | None = None,
        **options: Any,
    ) -> RunningPacs:
        server = new_pacs(
            kind, tmp_path / f"{kind}-{len(made) + 1}", ae_title, move_destinations, **options
        )
        made.append(server)
        track_log(request.node, f"{kind} PACS #{len(made)}", server.log_path)
        _started(server.start)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def storescp(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., RunningStorescp]]:
    """``make(ae_title="STORESCP", accept_compressed=True, max_pdu=0, fork=False)``: a started
    DCMTK storescp."""
    made: list[RunningStorescp] = []

    def make(
        ae_title: str = "STORESCP",
        accept_compressed: bool = True,
        max_pdu: int = 0,
        fork: bool = False,
    ) -> RunningStorescp:
        scp = RunningStorescp(
            folder=tmp_path / f"storescp-{len(made) + 1}",
            ae_title=ae_title,
            accept_compressed=accept_compressed,
            max_pdu=max_pdu,
            fork=fork,
        )
        made.append(scp)
        track_log(request.node, f"storescp {ae_title}", scp.log_path)
        return _started(scp.start)

    yield make
    for scp in made:
        scp.stop()
