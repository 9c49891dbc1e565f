"""What the fast sender does around each instance, against DCMTK storescp.

The next file's first block is read while the peer answers the current one, a File Meta is
read with a short first read, and a release ends the DUL thread without pynetdicom's 10 ms
polls (docs/engineering-notes.md, "C-STORE data phase").
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet import fast_store, wire
from pacsbridge.dicomnet.store import c_store
from pacsbridge.dicomnet.wire import read_file_meta

from .conftest import LOCAL


def _datasets(folder: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        meta = read_file_meta(path) if path.is_file() else None
        if meta is not None:
            found[meta.sop_instance_uid] = path.read_bytes()[meta.dataset_offset :]
    return found


def test_instances_larger_than_one_block_arrive_byte_identical_with_read_ahead(
    storescp: Any, tmp_path: Path
) -> None:
    """Each 5 MB instance spans two send blocks: the first read ahead, the second at send."""
    big = SampleStudy(series_count=1, instances_per_series=3, rows=1600, columns=1600)
    small = SampleStudy(series_count=1, instances_per_series=3)
    files = write_loose(tmp_path / "media" / "big", [big], junk=False)
    files += write_loose(tmp_path / "media" / "small", [small], junk=False)
    assert all(f.stat().st_size > fast_store.BLOCK_BYTES + 16384 for f in files[:3])
    scp = storescp(max_pdu=16384)
    opened: list[Path] = []
    real_open = fast_store.DataPhase._open

    def recording_open(path: Path, meta: Any, buffer: Any) -> Any:
        opened.append(path)
        return real_open(path, meta, buffer)

    fast_store.DataPhase._open = staticmethod(recording_open)  # type: ignore[method-assign]
    try:
        outcomes = list(c_store(LOCAL, scp.peer, files))
    finally:
        fast_store.DataPhase._open = staticmethod(real_open)  # type: ignore[method-assign]

    assert all(o.ok and o.status == 0 for o in outcomes), [o.detail for o in outcomes]
    assert _datasets(scp.folder) == _datasets(tmp_path / "media")
    assert opened == files  # each file opened once: read ahead for all but the first


def test_a_file_meta_longer_than_the_first_read_is_sent_from_its_true_data_set_offset(
    storescp: Any, tmp_path: Path
) -> None:
    study = SampleStudy(series_count=1, instances_per_series=1)
    (path,) = write_loose(tmp_path / "media", [study], junk=False)
    ds = dcmread(path)
    ds.file_meta.PrivateInformationCreatorUID = generate_uid()
    ds.file_meta.PrivateInformation = b"\x01" * (2 * wire.META_FIRST_READ)
    ds.save_as(path, enforce_file_format=True)
    meta = read_file_meta(path)
    assert meta is not None and meta.dataset_offset > wire.META_FIRST_READ
    scp = storescp(max_pdu=16384)

    outcomes = list(c_store(LOCAL, scp.peer, [path]))

    assert [o.ok for o in outcomes] == [True]
    sent = path.read_bytes()[meta.dataset_offset :]
    assert _datasets(scp.folder) == {meta.sop_instance_uid: sent}


def test_release_stops_the_dul_without_pynetdicoms_ten_millisecond_polls(
    storescp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = SampleStudy(series_count=1, instances_per_series=2)
    files = write_loose(tmp_path / "media", [study], junk=False)
    scp = storescp(max_pdu=16384)
    polls: list[tuple[str, float]] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        polls.append((threading.current_thread().name, seconds))
        real_sleep(seconds)

    # pynetdicom's kill sleeps 10 ms at a time, on the thread that releases (c_store's worker);
    # its reactors sleep 1 ms.
    monkeypatch.setattr(time, "sleep", sleep)
    outcomes = list(c_store(LOCAL, scp.peer, files))

    assert all(o.ok for o in outcomes)
    assert len(outcomes) == len(files) > 0
    assert [poll for poll in polls if poll[1] >= 0.01] == []
