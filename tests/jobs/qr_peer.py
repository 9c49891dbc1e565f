"""An in-process pynetdicom Q/R SCP that counts what reaches it, for the ledger tests.

It holds its studies in memory and answers Study Root C-FIND (STUDY, SERIES, IMAGE) and
C-MOVE over real associations; its C-MOVE sub-operations are real C-STOREs to the
destination. What the ledger tests need and no packaged PACS shows on demand:

* ``moves[study_uid]``: the C-MOVE requests counted on the source itself;
* ``find_delay``: a PACS slow to answer C-FIND (the duplicate check of an import);
* ``move_gate``: a C-MOVE held open until the test lets it go (a move in flight).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsbridge.dicomnet.peers import Peer
from peers.dicom import NODELAY_HANDLERS

LEVEL_KEY = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
MATCH_KEYS = ("PatientID", "AccessionNumber", *LEVEL_KEY.values())
UNIVERSAL = ("", "*")
SUCCESS, PENDING, UNKNOWN_DESTINATION = 0x0000, 0xFF00, 0xA801


class CountingQRSCP:
    """``CountingQRSCP(ae_title, destinations={ae: (host, port)})``; ``stop()`` when done."""

    def __init__(
        self,
        ae_title: str = "COUNTPACS",
        destinations: dict[str, tuple[str, int]] | None = None,
        find_delay: float = 0.0,
    ) -> None:
        self.ae_title = ae_title
        self.destinations = dict(destinations or {})
        self.find_delay = find_delay
        self.move_gate = threading.Event()
        self.move_gate.set()
        self.moves: Counter[str] = Counter()
        self.finds: Counter[str] = Counter()
        self._datasets: list[Dataset] = []
        self._lock = threading.Lock()
        self.server = self._ae().start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=self._handlers()
        )
        self.peer = Peer(ae_title, "127.0.0.1", self.server.server_address[1], name=ae_title)

    def load(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self._datasets += [dcmread(p) for p in paths]

    def stop(self) -> None:
        self.move_gate.set()
        self.server.shutdown()

    def _ae(self) -> AE:
        ae = AE(self.ae_title)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        ae.add_supported_context(Verification)
        ae.dimse_timeout = ae.network_timeout = 60
        return ae

    def _handlers(self) -> list[Any]:
        return [(evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move), *NODELAY_HANDLERS]

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        asked = event.identifier
        level = str(asked.QueryRetrieveLevel)
        with self._lock:
            self.finds[level] += 1
        time.sleep(self.find_delay)  # a PACS slow to answer (a busy archive)
        for ds in _unique(self._matching(asked), LEVEL_KEY[level]):
            yield PENDING, _answer(asked, ds, level)
        yield SUCCESS, None

    def _move(self, event: evt.Event) -> Iterator[Any]:
        asked = event.identifier
        with self._lock:
            self.moves[str(asked.get("StudyInstanceUID", ""))] += 1
        self.move_gate.wait(60)  # held open while the test wants a move in flight
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            yield None, None
            return
        matched = self._matching(asked)
        yield (*destination, {"contexts": _storage_contexts(matched)})
        yield len(matched)
        for ds in matched:
            yield PENDING, ds

    def _matching(self, asked: Dataset) -> list[Dataset]:
        with self._lock:
            return [ds for ds in self._datasets if _matches(asked, ds)]


def _matches(asked: Dataset, ds: Dataset) -> bool:
    for keyword in MATCH_KEYS:
        wanted = asked.get(keyword)
        if wanted is None:
            continue
        values = [str(v) for v in wanted] if not isinstance(wanted, str) else [wanted]
        values = [v for v in values if v not in UNIVERSAL]
        if values and str(ds.get(keyword, "")) not in values:
            return False
    return True


def _unique(datasets: list[Dataset], keyword: str) -> list[Dataset]:
    seen: dict[str, Dataset] = {}
    for ds in datasets:
        seen.setdefault(str(ds.get(keyword, "")), ds)
    return list(seen.values())


def _answer(asked: Dataset, ds: Dataset, level: str) -> Dataset:
    answer = Dataset()
    for element in asked:
        keyword = element.keyword
        if keyword and keyword != "QueryRetrieveLevel":
            setattr(answer, keyword, ds.get(keyword, ""))
    answer.QueryRetrieveLevel = level
    return answer


def _storage_contexts(datasets: list[Dataset]) -> list[Any]:
    from pynetdicom.presentation import build_context

    pairs = {(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets}
    return [build_context(sop_class, [syntax]) for sop_class, syntax in sorted(pairs)]
