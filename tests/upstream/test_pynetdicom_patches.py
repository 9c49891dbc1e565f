"""The upstream-style pynetdicom patches (patches/pynetdicom, docs/upstream-patches.md).

Each test applies a patch to a fresh copy of the installed pynetdicom and runs a real
association on 127.0.0.1 in a child process importing that copy; where the unpatched copy
behaves differently, the same script runs against it too, so the test shows the difference.
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream._copies import PATCHES, copy_with, run

NODELAY = "0001-tcp-nodelay.patch"
EVENTS = "0002-event-driven-dul.patch"
PAUSE = "0003-pause-reactor-once.patch"
ALL = sorted(p.name for p in PATCHES.glob("*.patch"))


def test_the_patch_series_is_the_three_documented_patches() -> None:
    assert ALL == [NODELAY, EVENTS, PAUSE]


def test_all_patches_apply_together_in_order_and_in_reverse_order(tmp_path: Path) -> None:
    forward = copy_with(tmp_path / "forward", *ALL)
    backward = copy_with(tmp_path / "backward", *reversed(ALL))
    for name in ("dul.py", "association.py", "transport.py", "_config.py"):
        one = (forward / "pynetdicom" / name).read_text()
        assert one == (backward / "pynetdicom" / name).read_text(), name


def test_0001_sets_tcp_nodelay_on_both_ends_and_small_stores_stop_waiting_for_acks(
    tmp_path: Path,
) -> None:
    patched = run(copy_with(tmp_path, NODELAY), "nodelay.py", "20")
    pristine = run(copy_with(tmp_path), "nodelay.py", "20")
    assert patched["nodelay"] == [1, 1]
    assert pristine["nodelay"] == [0, 0]
    # Nagle + delayed ACK: ~40 ms per C-STORE unpatched on Linux loopback
    assert patched["store_s"] * 3 < pristine["store_s"], (patched, pristine)


def test_0002_idle_association_reactors_stop_polling_and_c_echo_is_faster(
    tmp_path: Path,
) -> None:
    patched = run(copy_with(tmp_path, EVENTS), "idle.py", "1.5")
    pristine = run(copy_with(tmp_path), "idle.py", "1.5")
    # Unpatched: both reactors step every ~1 ms; patched: only when there is work
    assert pristine["dul_steps_per_s"] > 100 and pristine["assoc_steps_per_s"] > 100
    assert patched["dul_steps_per_s"] < 5 and patched["assoc_steps_per_s"] < 5, patched
    assert patched["echo_ms"] < pristine["echo_ms"], (patched, pristine)
    assert patched["released"] and pristine["released"]


def test_0003_pause_hands_the_socket_over_and_back_on_both_ends(tmp_path: Path) -> None:
    result = run(copy_with(tmp_path, PAUSE), "pause.py", "pause")
    assert result["is_paused"] and not result["is_paused_after_resume"]
    assert result["response_on_raw_socket"] and not result["taken_by_pynetdicom"]
    assert result["raw_response"] == {"type": 4, "echo_rsp": True}
    assert result["acceptor_read_and_gave_back"] == [0x04]  # a P-DATA-TF, answered after
    assert result["echo_after_resume"] == 0x0000
    assert result["released"]


def test_0003_without_a_pause_the_unpatched_dul_takes_the_response_off_the_socket(
    tmp_path: Path,
) -> None:
    result = run(copy_with(tmp_path), "pause.py", "none")
    assert not result["response_on_raw_socket"]


def test_all_three_together_keep_each_promise(tmp_path: Path) -> None:
    root = copy_with(tmp_path, *ALL)
    paused = run(root, "pause.py", "pause")
    assert paused["response_on_raw_socket"] and paused["echo_after_resume"] == 0x0000
    assert paused["released"]
    idle = run(root, "idle.py", "1.0")
    assert idle["dul_steps_per_s"] < 5 and idle["assoc_steps_per_s"] < 5
    assert run(root, "nodelay.py", "5")["nodelay"] == [1, 1]
