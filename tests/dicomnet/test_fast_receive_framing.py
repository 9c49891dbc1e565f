"""The fast receive path takes PDUs as senders really cut them, and answers in the peer's size.

DCMTK ``storescu`` at every ``--max-send-pdu`` it allows against our maximum PDU; pynetdicom on
one association mixing C-ECHO and C-STORE; and hand-cut PDUs on a negotiated association:
several PDVs per PDU, a command set in 7-byte fragments, the command's end and the data set's
start in one PDU, data fragments of uneven sizes, a peer whose maximum PDU is tiny.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet.wire import read_file_meta
from peers.dicom import STORESCU

from ._receiving import RawClient, ReceivingScp, datasets

NOT_AUTHORISED = 0x0124


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("framing")
    large = SampleStudy(series_count=1, instances_per_series=2, rows=700, columns=700)
    small = SampleStudy(series_count=1, instances_per_series=2)
    return write_loose(folder / "large", [large], junk=False) + write_loose(
        folder / "small", [small], junk=False
    )


@pytest.fixture
def receiving(tmp_path: Path):  # noqa: ANN201
    made: list[ReceivingScp] = []

    def make(**options) -> ReceivingScp:  # noqa: ANN003
        scp = ReceivingScp(tmp_path / f"received-{len(made)}", **options)
        made.append(scp)
        return scp

    yield make
    for scp in made:
        scp.stop()


def _storescu(port: int, files: list[Path], *options: str) -> subprocess.CompletedProcess:
    argv = [STORESCU, *options, "-aec", "PACSBRIDGE", "127.0.0.1", str(port), *map(str, files)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("send_pdu", "our_pdu"), [(4096, 16384), (16384, 131072), (131072, 1048576), (4096, 1048576)]
)
def test_storescu_at_every_send_pdu_size_lands_byte_identical(
    receiving, study: list[Path], send_pdu: int, our_pdu: int
) -> None:  # noqa: ANN001
    scp = receiving(max_pdu=our_pdu)

    done = _storescu(scp.port, study, "--max-send-pdu", str(send_pdu))

    assert done.returncode == 0 and "Failed" not in done.stderr, done.stderr
    assert len(scp.landed) == len(study)
    assert datasets(scp.folder) == {**datasets(study[0].parent), **datasets(study[-1].parent)}


def test_a_refused_instance_is_never_written_and_the_next_one_lands(
    receiving, study: list[Path]
) -> None:  # noqa: ANN001
    refused = read_file_meta(study[0]).sop_instance_uid  # type: ignore[union-attr]
    scp = receiving(refuse=lambda uid: NOT_AUTHORISED if uid == refused else 0)

    done = _storescu(scp.port, study[:2], "-v", "--no-halt")

    assert "Status: 0x124" in done.stderr, done.stderr
    assert scp.stored == [read_file_meta(study[1]).sop_instance_uid]  # type: ignore[union-attr]
    assert list(datasets(scp.folder)) == scp.stored and len(scp.files()) == 1


def test_c_echo_and_c_store_mix_on_one_association(receiving, study: list[Path]) -> None:  # noqa: ANN001
    scp = receiving()
    ae = AE(ae_title="MIXED")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.1"])
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="PACSBRIDGE")
    assert assoc.is_established
    statuses = [int(assoc.send_c_echo().Status)]
    for path in study[:2]:
        statuses.append(int(assoc.send_c_store(dcmread(path)).Status))
        statuses.append(int(assoc.send_c_echo().Status))
    assoc.release()
    ae.shutdown()

    assert statuses == [0, 0, 0, 0, 0]
    assert assoc.is_released
    assert sorted(datasets(scp.folder)) == sorted(scp.landed) and len(scp.landed) == 2


def _hand_cut(client: RawClient, path: Path, message_id: int) -> None:
    """The command in 7-byte PDVs, its last one with the first data PDVs in one PDU, data
    fragments of 1, 999 and 4093 bytes, several PDVs per PDU."""
    meta = read_file_meta(path)
    assert meta is not None
    data = path.read_bytes()[meta.dataset_offset :]
    command = client.command(message_id, meta.sop_instance_uid)
    pieces = [command[i : i + 7] for i in range(0, len(command), 7)]
    client.send_pdu([(0x01, piece) for piece in pieces[:-1]])
    sizes, fragments, at = [1, 999, 4093], [], 0
    while at < len(data):
        size = sizes[len(fragments) % 3]
        fragments.append(data[at : at + size])
        at += size
    first = [(0x03, pieces[-1]), (0x00, fragments[0]), (0x00, fragments[1])]
    client.send_pdu(first)
    rest = fragments[2:]
    for start in range(0, len(rest), 5):
        batch = rest[start : start + 5]
        last = start + 5 >= len(rest)
        client.send_pdu(
            [(0x02 if last and i == len(batch) - 1 else 0x00, f) for i, f in enumerate(batch)]
        )


def test_hand_cut_pdus_land_byte_identical_and_responses_fit_a_tiny_peer_pdu(
    receiving, study: list[Path]
) -> None:  # noqa: ANN001
    scp = receiving()
    client = RawClient(scp.port, max_pdu=64)  # our responses must come in PDUs of <= 64 bytes
    answers = []
    for number, path in enumerate(study, start=1):
        _hand_cut(client, path, number)
        message_id, status, _command = client.read_response()
        answers.append((message_id, status, client.largest_pdu <= 64))
    client.close()

    assert answers == [(n, 0, True) for n in range(1, len(study) + 1)]
    assert datasets(scp.folder) == {**datasets(study[0].parent), **datasets(study[-1].parent)}
