"""C-STORE many files over one or more associations, one outcome per file.

* Each file is sent in its own transfer syntax, straight from disk without decoding
  (``STORE_SEND_CHUNKED_DATASET``): memory stays flat whatever the instance size.
* Every (SOP class, transfer syntax) pair gets its own presentation context, plus one Explicit
  VR Little Endian context per SOP class that has a compressed file (only what the files need:
  fewer contexts, faster negotiation); when the PACS refuses a compressed syntax, that file is
  decompressed and sent as Explicit VR Little Endian, and the outcome says ``transcoded``.
* With ``LocalAE.fast_store`` (setting ``dicom.fast_store``) the data phase of each ordinary
  C-STORE runs on the association's socket from the sending thread (dicomnet/fast_store.py);
  pynetdicom still negotiates and releases, and sends what needs transcoding (the slow path).
  Message IDs increase on both paths.
* ``associations`` > 1 splits the files over parallel associations (threads: the work is mostly
  socket I/O in pynetdicom's own threads).
* Outcomes that may pass later (no response, association lost, out of resources 0xA7xx) are
  ``retriable``; other failure statuses are permanent and name the status.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from pacsbridge.dicomnet.association import associate, status_of
from pacsbridge.dicomnet.fast_store import DataPhase
from pacsbridge.dicomnet.peers import LocalAE, Peer
from pacsbridge.dicomnet.transcode import decompressed, is_compressed
from pacsbridge.dicomnet.wire import FileMeta, PeerEnded, read_file_meta
from pacsbridge.errors import PeerError

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
WARNINGS = {0xB000, 0xB006, 0xB007}


@dataclass(frozen=True)
class StoreOutcome:
    path: Path
    sop_instance_uid: str
    status: int | None
    ok: bool
    retriable: bool
    detail: str = ""
    transcoded: bool = False


@dataclass(frozen=True)
class _File:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    meta: FileMeta | None = None  # parsed without pydicom: the fast path can send it as it is


_DONE = object()


def c_store(
    local: LocalAE,
    peer: Peer,
    paths: Iterable[Path],
    associations: int = 1,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[StoreOutcome]:
    """Yield one :class:`StoreOutcome` per path, in completion order.

    ``should_stop`` is asked before each instance (from the sending threads); once it answers
    True nothing more is sent and the unsent paths get no outcome (a cancelled import).

    Raises the association error itself (PeerUnavailable / PeerRefused) when no association
    could be opened at all, so the caller reports "PACS non raggiungibile" once, not per file.
    """
    files: list[_File] = []
    for path in paths:
        found = _read(Path(path))
        if isinstance(found, StoreOutcome):
            yield found
        else:
            files.append(found)
    if not files:
        return
    contexts = _contexts(files)
    groups = [files[i :: max(1, associations)] for i in range(max(1, associations))]
    groups = [g for g in groups if g]
    yield from _run_parallel(local, peer, contexts, groups, should_stop or _never)


def _never() -> bool:
    return False


def _read(path: Path) -> _File | StoreOutcome:
    """The File Meta is enough to send a file (PS3.10 §7.1); pydicom reads the unusual ones."""
    meta = read_file_meta(path)
    if meta is not None:
        return _File(
            path, meta.sop_class_uid, meta.sop_instance_uid, meta.transfer_syntax_uid, meta
        )
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
        return _File(
            path,
            str(ds.SOPClassUID),
            str(ds.SOPInstanceUID),
            str(ds.file_meta.TransferSyntaxUID),
        )
    except (OSError, InvalidDicomError, AttributeError, ValueError) as error:
        return StoreOutcome(path, "", None, False, False, f"unreadable file: {error}")


def _contexts(files: Sequence[_File]) -> list[PresentationContext]:
    """What the files need: their own pairs, and Explicit VR LE where one may be decompressed."""
    pairs: dict[tuple[str, str], None] = {}
    for f in files:
        pairs[(f.sop_class_uid, f.transfer_syntax_uid)] = None
    for f in files:
        if is_compressed(f.transfer_syntax_uid):
            pairs[(f.sop_class_uid, ExplicitVRLittleEndian)] = None
    if len(pairs) > MAX_CONTEXTS:
        log.warning("more than %d presentation contexts needed; extra ones dropped", MAX_CONTEXTS)
    return [build_context(sop, [ts]) for sop, ts in list(pairs)[:MAX_CONTEXTS]]


def _run_parallel(
    local: LocalAE,
    peer: Peer,
    contexts: list[PresentationContext],
    groups: list[list[_File]],
    should_stop: Callable[[], bool],
) -> Iterator[StoreOutcome]:
    outcomes: queue.Queue[object] = queue.Queue(maxsize=256)
    errors: list[PeerError] = []
    threads = [
        threading.Thread(
            target=_worker,
            args=(local, peer, contexts, group, outcomes, errors, should_stop),
            name=f"c-store-{n}",
            daemon=True,
        )
        for n, group in enumerate(groups)
    ]
    for thread in threads:
        thread.start()
    finished = 0
    while finished < len(threads):
        item = outcomes.get()
        if item is _DONE:
            finished += 1
            continue
        yield item  # type: ignore[misc]
    for thread in threads:
        thread.join()
    if errors and len(errors) == len(groups):
        raise errors[0]  # no association at all: one clear error, not one per file


def _worker(
    local: LocalAE,
    peer: Peer,
    contexts: list[PresentationContext],
    group: list[_File],
    outcomes: queue.Queue[object],
    errors: list[PeerError],
    should_stop: Callable[[], bool],
) -> None:
    try:
        with associate(local, peer, contexts) as assoc:
            if local.fast_store:
                _send_all_fast(assoc, local, group, outcomes, should_stop)
            else:
                _send_all(assoc, group, outcomes, should_stop)
    except PeerError as error:
        errors.append(error)
    finally:
        outcomes.put(_DONE)


def _send_all(
    assoc: Association,
    group: list[_File],
    outcomes: queue.Queue[object],
    should_stop: Callable[[], bool],
) -> None:
    accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
    message_ids = itertools.count(1)
    for index, file in enumerate(group):
        if should_stop():
            return
        if not assoc.is_established:
            _lost(group[index:], outcomes, "association lost")
            return
        outcomes.put(_send_one(assoc, file, accepted, next(message_ids)))


def _send_all_fast(
    assoc: Association,
    local: LocalAE,
    group: list[_File],
    outcomes: queue.Queue[object],
    should_stop: Callable[[], bool],
) -> None:
    """Ordinary files on the fast data phase; the rest, and whatever it refuses, slow."""
    accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
    phase = DataPhase(assoc, local.dimse_timeout, local.network_timeout)
    message_ids = itertools.count(1)
    try:
        for index, file in enumerate(group):
            if should_stop():
                return
            if phase.ended:
                _lost(group[index:], outcomes, f"association lost: {phase.ended}")
                return
            if not assoc.is_established:
                _lost(group[index:], outcomes, "association lost")
                return
            message_id = next(message_ids)
            context_id = phase.context_for(file.sop_class_uid, file.transfer_syntax_uid)
            response = None
            if file.meta is not None and context_id is not None:
                try:
                    response = phase.store(file.path, file.meta, context_id, message_id)
                except PeerEnded as ended:
                    outcomes.put(_outcome(file, None, str(ended), retriable=True))
                    continue
            if response is not None:
                outcomes.put(_judge(file, response.status, transcoded=False))
                continue
            phase.give_back()
            outcomes.put(_send_one(assoc, file, accepted, message_id))
    finally:
        phase.give_back()


def _lost(files: list[_File], outcomes: queue.Queue[object], detail: str) -> None:
    for rest in files:
        outcomes.put(_outcome(rest, None, detail, retriable=True))


def _send_one(
    assoc: Association, file: _File, accepted: set[tuple[str, str]], message_id: int
) -> StoreOutcome:
    if (file.sop_class_uid, file.transfer_syntax_uid) in accepted:
        status = status_of(assoc.send_c_store(file.path, msg_id=message_id))
        return _judge(file, status, transcoded=False)
    if is_compressed(file.transfer_syntax_uid) and (
        (file.sop_class_uid, ExplicitVRLittleEndian) in accepted
    ):
        try:
            dataset = decompressed(file.path)
        except Exception as error:  # noqa: BLE001 - any decoder failure is this file's outcome
            return _outcome(file, None, f"cannot decompress for the PACS: {error}", False)
        status = status_of(assoc.send_c_store(dataset, msg_id=message_id))
        return _judge(file, status, transcoded=True)
    return _outcome(
        file,
        None,
        f"SOP class {file.sop_class_uid} / transfer syntax {file.transfer_syntax_uid} "
        "not accepted by the PACS",
        retriable=False,
    )


def _judge(file: _File, status: int | None, transcoded: bool) -> StoreOutcome:
    if status is None:
        return _outcome(file, None, "no response from the PACS", True, transcoded)
    if status == 0x0000 or status in WARNINGS:
        detail = f"warning 0x{status:04X}" if status else ""
        return StoreOutcome(
            file.path, file.sop_instance_uid, status, True, False, detail, transcoded
        )
    retriable = status & 0xFF00 == 0xA700  # out of resources: the PACS may recover
    return _outcome(file, status, f"C-STORE status 0x{status:04X}", retriable, transcoded)


def _outcome(
    file: _File, status: int | None, detail: str, retriable: bool, transcoded: bool = False
) -> StoreOutcome:
    return StoreOutcome(
        file.path, file.sop_instance_uid, status, False, retriable, detail, transcoded
    )
