"""Faults while the fast receive path writes an instance: each ends the association with a clear
logged reason, no partial file is ever left, nothing is handed to the C-STORE handler, and the
SCP goes on serving the next association.

Real peers: a DCMTK ``storescu`` killed mid-transfer, and a negotiated pynetdicom association
whose socket the test drives (an A-ABORT, an A-RELEASE-RQ or a closed connection in the middle
of a data set, an unsupported message, a peer gone silent).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ImplicitVRLittleEndian

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.fast_receive import LARGEST_COMMAND
from pacsbridge.dicomnet.wire import read_file_meta
from peers.dicom import STORESCU, c_echo_status

from ._receiving import RawClient, ReceivingScp

ABORT = bytes((0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0))
RELEASE_RQ = bytes((0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    study = SampleStudy(series_count=1, instances_per_series=1, rows=2048, columns=2048)
    return write_loose(folder, [study], junk=False)[0]


@pytest.fixture
def scp(tmp_path: Path):  # noqa: ANN201
    made = ReceivingScp(tmp_path / "received", network_timeout=2)
    yield made
    made.stop()


def _half_sent(client: RawClient, path: Path) -> None:
    """The command and the first half of the data set, in PDUs of 16 KB."""
    meta = read_file_meta(path)
    assert meta is not None
    data = path.read_bytes()[meta.dataset_offset :]
    client.send_pdu([(0x03, client.command(1, meta.sop_instance_uid))])
    for start in range(0, len(data) // 2, 16000):
        client.send_pdu([(0x00, data[start : start + 16000])])


def _wait_for(condition, seconds: float = 10) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _ended_cleanly(scp: ReceivingScp, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    assert _wait_for(lambda: reason in caplog.text), caplog.text
    assert "partial file deleted" in caplog.text
    assert scp.files() == [] and scp.stored == []
    assert c_echo_status("127.0.0.1", scp.port, "PACSBRIDGE") == 0  # still serving


def test_abort_mid_data_set_deletes_the_partial_file(
    scp: ReceivingScp, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    _half_sent(client, big_file)
    assert _wait_for(lambda: scp.files() != [])  # the file was being written
    client.sock.sendall(ABORT)

    _ended_cleanly(scp, caplog, "association aborted by the PACS")
    client.close()


def test_release_mid_data_set_is_answered_and_deletes_the_partial_file(
    scp: ReceivingScp, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    _half_sent(client, big_file)
    client.sock.sendall(RELEASE_RQ)

    assert client.next_pdu_type() == 0x06  # A-RELEASE-RP
    _ended_cleanly(scp, caplog, "the peer released the association")
    client.close()


def test_connection_closed_mid_data_set_deletes_the_partial_file(
    scp: ReceivingScp, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    _half_sent(client, big_file)
    client.close()

    _ended_cleanly(scp, caplog, "the peer closed the connection")


def test_a_silent_peer_is_aborted_after_the_network_timeout(
    scp: ReceivingScp, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    _half_sent(client, big_file)

    assert client.next_pdu_type() == 0x07  # A-ABORT, after the 2 s network timeout
    _ended_cleanly(scp, caplog, "no data within the network timeout")
    client.close()


def test_an_unsupported_message_is_answered_with_an_abort(
    scp: ReceivingScp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    find_rq = bytearray(client.command(1, "1.2.3"))
    find_rq[find_rq.index(b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00") + 8] = 0x20  # C-FIND-RQ
    client.send_pdu([(0x03, bytes(find_rq))])

    assert client.next_pdu_type() == 0x07
    assert _wait_for(lambda: "unsupported message (command 0x0020)" in caplog.text)
    assert scp.landed == [] and scp.files() == []
    assert c_echo_status("127.0.0.1", scp.port, "PACSBRIDGE") == 0
    client.close()


def test_killed_storescu_leaves_no_partial_file(
    scp: ReceivingScp, big_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    slow = tmp_path / "huge.dcm"  # 2048x2048x16 bits x 12 frames: ~100 MB, seconds to send
    ds = dcmread(big_file)
    ds.NumberOfFrames = 12
    ds.PixelData = ds.PixelData * 12
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(slow, implicit_vr=True, little_endian=True, enforce_file_format=True)
    sender = subprocess.Popen(
        [STORESCU, "--max-send-pdu", "4096", "-aec", "PACSBRIDGE", "127.0.0.1", str(scp.port)]
        + [str(slow)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: any(p.stat().st_size > 1 << 20 for p in scp.folder.iterdir()))
        os.kill(sender.pid, signal.SIGKILL)
    finally:
        sender.wait(timeout=10)

    _ended_cleanly(scp, caplog, "the peer closed the connection")


def test_pynetdicom_abort_of_a_fast_association_ends_it_at_once(
    scp: ReceivingScp, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``Association.abort`` (as ``AE.shutdown`` calls it) must not wait for the parked DUL."""
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)
    _half_sent(client, big_file)
    assert _wait_for(lambda: scp.files() != [])
    [assoc] = scp.scp._server.active_associations  # type: ignore[union-attr]
    started = time.monotonic()

    assoc.abort()

    assert time.monotonic() - started < 2 and assoc.is_aborted and not assoc.is_alive()
    assert client.next_pdu_type() == 0x07
    _ended_cleanly(scp, caplog, "aborted by our side")
    client.close()


def test_a_pdu_far_above_our_maximum_is_aborted_never_buffered(
    scp: ReceivingScp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)  # our maximum: 16 KB
    client.sock.sendall(bytes((0x04, 0, 0x10, 0, 0, 0)))  # a P-DATA-TF of 256 MB announced

    assert client.next_pdu_type() == 0x07
    assert _wait_for(lambda: "far above our maximum" in caplog.text), caplog.text
    assert scp.files() == [] and c_echo_status("127.0.0.1", scp.port, "PACSBRIDGE") == 0
    client.close()


def test_command_fragments_without_end_are_aborted_at_the_command_bound_never_buffered(
    scp: ReceivingScp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pacsbridge.dicomnet.fast_receive")
    client = RawClient(scp.port)  # our maximum: 16 KB
    for _ in range(LARGEST_COMMAND // 16000 + 2):  # command, not last (PS3.8 §E.2: 0x01)
        client.send_pdu([(0x01, b"\0" * 16000)])

    assert client.next_pdu_type() == 0x07
    assert _wait_for(lambda: f"a command set longer than {LARGEST_COMMAND}" in caplog.text), (
        caplog.text
    )
    assert scp.landed == [] and scp.files() == []
    assert c_echo_status("127.0.0.1", scp.port, "PACSBRIDGE") == 0
    client.close()
