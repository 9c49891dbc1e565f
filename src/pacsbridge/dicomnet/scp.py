"""Our Storage SCP: receives the C-MOVE sub-operations of FSE retrievals.

Received data sets arrive in a temporary file (``STORE_RECV_CHUNKED_DATASET``) and are copied to
their destination by the handler without being decoded, so memory stays flat. What to accept is
the handler's decision (``on_store`` returns the DIMSE status); this class only speaks DICOM.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacsbridge.dicomnet.association import make_ae, on_connection_open
from pacsbridge.dicomnet.peers import LocalAE

log = logging.getLogger(__name__)

PROCESSING_FAILURE = 0x0110


@dataclass
class StoreRequest:
    """One incoming C-STORE, as the handler needs it."""

    calling_ae: str
    sop_class_uid: str
    sop_instance_uid: str
    dataset_path: Path
    _header: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def study_instance_uid(self) -> str:
        """Read from the received data set on first use (raises when it is unreadable)."""
        if "study" not in self._header:
            ds = dcmread(
                self.dataset_path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"]
            )
            self._header["study"] = str(ds.StudyInstanceUID)
        return self._header["study"]

    def write_to(self, path: Path) -> None:
        """Copy the received file (DICOM file format, with its meta) to ``path``."""
        shutil.copyfile(self.dataset_path, path)


class StorageSCP:
    """A threaded Storage SCP on ``host:port`` that hands every C-STORE to ``on_store``."""

    def __init__(
        self, local: LocalAE, host: str, port: int, on_store: Callable[[StoreRequest], int]
    ) -> None:
        self.local, self.host, self.port, self.on_store = local, host, port, on_store
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
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None


def _handle(on_store: Callable[[StoreRequest], int], event: evt.Event) -> int:
    request = event.request
    try:
        incoming = StoreRequest(
            calling_ae=str(event.assoc.requestor.ae_title).strip(),
            sop_class_uid=str(request.AffectedSOPClassUID),
            sop_instance_uid=str(request.AffectedSOPInstanceUID),
            dataset_path=Path(event.dataset_path),
        )
        return on_store(incoming)
    except Exception:  # a handler answers a status; pynetdicom would answer 0xC211
        log.exception("C-STORE handler failed")
        return PROCESSING_FAILURE
