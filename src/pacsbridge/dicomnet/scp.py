"""Our Storage SCP: receives the C-MOVE sub-operations of FSE retrievals.

With ``dicom.fast_receive`` (and an ``on_land``) the data phase runs on the association's own
thread straight into the destination's folder (dicomnet/fast_receive.py); otherwise pynetdicom
receives each data set into a temporary file (``STORE_RECV_CHUNKED_DATASET``) that the handler
copies to its destination. Neither decodes the data set, so memory stays flat. What to accept is
the handler's decision: ``on_associate`` says whether a caller (calling AE title and the
address the connection really comes from) may open an association at all, ``on_store``
returns the DIMSE status of each C-STORE. This class only speaks DICOM.

A calling AE title is a claim anyone can make, the TCP peer address is not (PS3.15 Annex B
leaves node authentication to the network): so the address travels with every request, and
host names are resolved here once, at start-up (:func:`resolve`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacsbridge.dicomnet import tls
from pacsbridge.dicomnet.acceptor_contexts import sharing_uids
from pacsbridge.dicomnet.acceptor_handover import Handover
from pacsbridge.dicomnet.association import make_ae, on_connection_open
from pacsbridge.dicomnet.fast_receive import StoreLoop
from pacsbridge.dicomnet.peers import LocalAE
from pacsbridge.dicomnet.wire_receive import Command

log = logging.getLogger(__name__)

PROCESSING_FAILURE = 0x0110
#: A-ASSOCIATE-RJ (PS3.8 §9.3.4): rejected-permanent, by the service user, calling AE title
#: not recognised: the one reason a stranger (or a known title from a strange host) is given.
REJECT_CALLER = (0x01, 0x01, 0x03)
#: What the handler reads of a received data set: enough to admit it, never the pixels.
HEADER_TAGS = (
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientID",
    "IssuerOfPatientID",
)


@dataclass
class StoreRequest:
    """One incoming C-STORE, as the handler needs it."""

    calling_ae: str
    sop_class_uid: str
    sop_instance_uid: str
    dataset_path: Path
    #: the TCP peer address of the association (normalised, see :func:`normal_address`)
    address: str = ""
    #: the fast path wrote ``dataset_path`` in the destination's folder: move it, never copy
    in_place: bool = False
    _header: dict[str, str] | None = field(default=None, repr=False)

    def header(self) -> dict[str, str]:
        """``HEADER_TAGS`` of the received data set, read once (raises when unreadable).

        Values are as the element holds them less their padding; a missing one is "".
        """
        if self._header is None:
            ds = dcmread(
                self.dataset_path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS)
            )
            self._header = {k: str(ds.get(k, "") or "").rstrip("\x00 ") for k in HEADER_TAGS}
        return self._header

    @property
    def study_instance_uid(self) -> str:
        """The data set's Study Instance UID (raises when the data set is unreadable)."""
        return self.header()["StudyInstanceUID"]

    def write_to(self, path: Path) -> None:
        """Copy the received file (DICOM file format, with its meta) to ``path``.

        A file the fast path wrote (``in_place``) is on the same file system: renamed instead.
        """
        if self.in_place:
            os.replace(self.dataset_path, path)
            self.dataset_path = path
        else:
            shutil.copyfile(self.dataset_path, path)


class StorageSCP:
    """A threaded Storage SCP on ``host:port`` that hands every C-STORE to ``on_store``.

    ``on_associate(calling_ae, address)`` runs when an A-ASSOCIATE-RQ arrives; False (or an
    exception: fail closed) answers A-ASSOCIATE-RJ. Without it every caller is accepted.

    With ``on_land`` and ``local.fast_receive`` the data phase runs on the association's thread
    (dicomnet/fast_receive.py): ``on_land(request)`` answers, from the command alone, the path
    to write the data set to (a name of ours in its final folder) or a refusal status; then
    ``on_store`` gets the request with ``in_place`` set and that path as ``dataset_path``.
    With ``local.tls_scp`` only DICOM TLS callers with a trusted certificate get that far
    (dicomnet/tls.py).
    """

    def __init__(
        self,
        local: LocalAE,
        host: str,
        port: int,
        on_store: Callable[[StoreRequest], int],
        on_associate: Callable[[str, str], bool] | None = None,
        on_stop: Callable[[], None] | None = None,
        on_land: Callable[[StoreRequest], Path | int] | None = None,
    ) -> None:
        self.local, self.host, self.port, self.on_store = local, host, port, on_store
        self.on_associate, self.on_stop, self.on_land = on_associate, on_stop, on_land
        self._server: ThreadedAssociationServer | None = None

    def start(self) -> None:
        """Listen now (raises OSError when the port is taken); returns at once."""
        ae = make_ae(self.local)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_called_aet = False
        handlers = [
            (evt.EVT_C_STORE, functools.partial(_handle, self.on_store)),
            (evt.EVT_CONN_OPEN, on_connection_open),
        ]
        if self.on_associate is not None:
            handlers.append((evt.EVT_REQUESTED, functools.partial(_gate, self.on_associate)))
        if self.on_land is not None and self.local.fast_receive:
            handlers.append((evt.EVT_REQUESTED, self._fast))
        context = None
        if self.local.tls_scp:
            context = tls.server_context(self.local.tls)
            handshake = functools.partial(tls.accept, self.local.acse_timeout)
            handlers.insert(0, (evt.EVT_CONN_OPEN, handshake))
        self._server = ae.start_server(
            (self.host, self.port), block=False, evt_handlers=handlers, ssl_context=context
        )
        self._server.contexts = sharing_uids(self._server.contexts)  # set-up cost, see there
        self.port = self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self.on_stop is not None:
            self.on_stop()

    def _fast(self, event: evt.Event) -> None:
        """EVT_REQUESTED, after the gate: the data phase of this association will be ours."""
        assoc = event.assoc
        if assoc.is_rejected or assoc.is_aborted or self.on_land is None:
            return
        handover = Handover(assoc)
        if not handover.arm():
            return  # TLS: pynetdicom serves it

        def new_request(command: Command) -> StoreRequest:
            return StoreRequest(
                calling_ae=str(assoc.requestor.ae_title).strip(),
                sop_class_uid=command.sop_class_uid,
                sop_instance_uid=command.sop_instance_uid,
                dataset_path=Path(),
                address=normal_address(assoc.requestor.address),
            )

        store = functools.partial(_guarded, self.on_store)
        handover.install(StoreLoop(assoc, handover, self.on_land, store, new_request))


def _gate(on_associate: Callable[[str, str], bool], event: evt.Event) -> None:
    """EVT_REQUESTED: pynetdicom skips negotiation when the handler has sent A-ASSOCIATE-RJ."""
    assoc = event.assoc
    try:
        calling = str(assoc.requestor.primitive.calling_ae_title).strip()
        allowed = on_associate(calling, normal_address(assoc.requestor.address))
    except Exception:  # fail closed: pynetdicom would log the error and accept the association
        log.exception("association gate failed; rejecting")
        allowed = False
    if not allowed:  # as pynetdicom's own rejections: the DUL sends the RJ before it stops
        assoc.acse.send_reject(*REJECT_CALLER)
        assoc.kill()


def _guarded(on_store: Callable[[StoreRequest], int], request: StoreRequest) -> int:
    try:
        return on_store(request)
    except Exception:  # a handler answers a status
        log.exception("C-STORE handler failed")
        return PROCESSING_FAILURE


def _handle(on_store: Callable[[StoreRequest], int], event: evt.Event) -> int:
    request = event.request
    try:
        incoming = StoreRequest(
            calling_ae=str(event.assoc.requestor.ae_title).strip(),
            sop_class_uid=str(request.AffectedSOPClassUID),
            sop_instance_uid=str(request.AffectedSOPInstanceUID).rstrip("\x00 "),
            dataset_path=Path(event.dataset_path),
            address=normal_address(event.assoc.requestor.address),
        )
        return on_store(incoming)
    except Exception:  # a handler answers a status; pynetdicom would answer 0xC211
        log.exception("C-STORE handler failed")
        return PROCESSING_FAILURE


def normal_address(address: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 (a dual-stack socket) as plain IPv4."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return str(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def resolve(hosts: Iterable[str]) -> frozenset[str]:
    """Every address the host names (or literal addresses) resolve to now; unknown: none."""
    found: set[str] = set()
    for host in hosts:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            log.warning("cannot resolve %s (a source's store address)", host)
            continue
        found.update(normal_address(str(info[4][0])) for info in infos)
    return frozenset(found)
