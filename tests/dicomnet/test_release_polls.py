"""A release ends pynetdicom's DUL thread at the step that makes it idle (Sta1), without
``Association.kill``'s 10 ms polls (dicomnet/association.py), against DCMTK storescp."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.store import c_store

from .conftest import LOCAL


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

    # pynetdicom's kill sleeps 10 ms at a time on the releasing thread; its reactors 1 ms.
    monkeypatch.setattr(time, "sleep", sleep)
    outcomes = list(c_store(LOCAL, scp.peer, files))

    assert len(outcomes) == len(files) == 2
    assert all(o.ok for o in outcomes)
    assert polls  # the patch is seen: pynetdicom's reactors still poll at 1 ms
    assert [poll for poll in polls if poll[1] >= 0.01] == []
