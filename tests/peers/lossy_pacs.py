"""An in-process pynetdicom PACS that answers C-STORE success but keeps only some instances.

It models a PACS whose C-STORE response is not a promise: every ``drop_every``-th distinct
SOP Instance UID it receives (1-based, in arrival order) is answered 0x0000 and thrown away,
every time it is sent again. It answers C-ECHO and Study Root C-FIND at STUDY, SERIES and IMAGE
level from what it kept, so a client's confirmation query sees exactly what was kept.

``stores`` counts C-STOREs per SOP Instance UID (the test's witness of what was re-sent).
Use it through the ``lossy_pacs`` fixture (a factory; every server made is stopped after the
test)::

    def test_x(lossy_pacs):
        pacs = lossy_pacs(drop_every=3)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from peers.dicom import HOST, NODELAY_HANDLERS, free_port, make_peer

__all__ = ["LossyPacs", "lossy_pacs"]

LEVEL_KEYS = {
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


class LossyPacs:
    """See the module docstring."""

    def __init__(self, drop_every: int, ae_title: str = "PACS") -> None:
        self.drop_every = drop_every
        self.ae_title = ae_title
        self.host = HOST
        self.port = free_port()
        self.stores: Counter[str] = Counter()
        self.kept: dict[str, Dataset] = {}
        self.dropped: set[str] = set()
        self._arrival: list[str] = []
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def peer(self) -> Any:
        return make_peer(self.ae_title, self.host, self.port, "test PACS (lossy)")

    def start(self) -> LossyPacs:
        ae = AE(self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        handlers = [
            *NODELAY_HANDLERS,
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def instance_uids(self, study_uid: str) -> set[str]:
        with self._lock:
            return {uid for uid, ds in self.kept.items() if ds.StudyInstanceUID == study_uid}

    # -- handlers (run in pynetdicom's threads) ------------------------------------------------

    def _on_store(self, event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        uid = str(ds.SOPInstanceUID)
        with self._lock:
            self.stores[uid] += 1
            if uid not in self._arrival:
                self._arrival.append(uid)
            if (self._arrival.index(uid) + 1) % self.drop_every == 0:
                self.dropped.add(uid)
            else:
                self.kept[uid] = ds
        return 0x0000  # success either way: that is the fault

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        level = str(query.get("QueryRetrieveLevel", ""))
        if level not in LEVEL_KEYS:
            yield 0xC000, None
            return
        for row in self._rows(query, level):
            yield 0xFF00, row
        yield 0x0000, None

    def _rows(self, query: Dataset, level: str) -> list[Dataset]:
        keys = LEVEL_KEYS[level]
        with self._lock:
            held = list(self.kept.values())
        rows: dict[tuple[str, ...], Dataset] = {}
        for ds in held:
            if all(_matches(query, ds, key) for key in keys):
                unique = tuple(str(ds.get(key, "")) for key in keys)
                rows.setdefault(unique, _answer(query, ds, level))
        return list(rows.values())


def _matches(query: Dataset, ds: Dataset, keyword: str) -> bool:
    wanted = str(query.get(keyword, "") or "")
    return not wanted or wanted == str(ds.get(keyword, ""))


def _answer(query: Dataset, ds: Dataset, level: str) -> Dataset:
    row = Dataset()
    row.QueryRetrieveLevel = level
    for element in query:
        if element.keyword and element.keyword != "QueryRetrieveLevel":
            setattr(row, element.keyword, ds.get(element.keyword, ""))
    return row


@pytest.fixture
def lossy_pacs() -> Iterator[Callable[..., LossyPacs]]:
    """``make(drop_every=3)``: a started :class:`LossyPacs`; all are stopped after the test."""
    made: list[LossyPacs] = []

    def make(drop_every: int = 3, ae_title: str = "PACS") -> LossyPacs:
        server = LossyPacs(drop_every, ae_title)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.stop()
