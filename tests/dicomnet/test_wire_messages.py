"""Reading a DIMSE response off a socket (dicomnet/wire.py ``_read_message``), on real sockets.

The fast C-STORE and C-MOVE requestors read their responses with it: a PACS's bytes are
untrusted, so a command set that never ends, or a response data set without end, is aborted
(an A-ABORT PDU on the wire) and never buffered without bound.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections.abc import Iterator
from functools import partial

import pytest

from pacsbridge.dicomnet.wire import (
    _ABORT_PDU,
    LARGEST_COMMAND,
    LARGEST_RESPONSE_DATA,
    PeerEnded,
    _element,
    _read_message,
)

HAS_DATA = _element(0x0800, b"\x01\x02")  # any value but 0x0101: a data set follows
PDV = 16 * 1024


def _pdu(*pdvs: tuple[int, bytes]) -> bytes:
    body = b"".join(struct.pack(">LBB", len(v) + 2, 1, control) + v for control, v in pdvs)
    return struct.pack(">BBL", 0x04, 0, len(body)) + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, pacs = socket.socketpair()
    ours.settimeout(10)
    pacs.settimeout(10)
    yield ours, pacs
    ours.close()
    pacs.close()


def _send_in_background(sock: socket.socket, pdus: Iterator[bytes]) -> threading.Thread:
    def send() -> None:
        try:
            for pdu in pdus:
                sock.sendall(pdu)
        except OSError:
            pass  # the reader stopped reading: what the test is about

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _read(ours: socket.socket, keep_data: bool) -> tuple[bytearray, bytearray]:
    return _read_message(ours, "the test", partial(ours.sendall, _ABORT_PDU), keep_data)


def test_a_response_in_fragments_over_several_pdus_is_put_back_together(pair) -> None:  # noqa: ANN001
    ours, pacs = pair
    command = HAS_DATA + _element(0x0900, b"\x00\x00")
    pacs.sendall(_pdu((0x01, command[:5])) + _pdu((0x03, command[5:]), (0x00, b"ab")))
    pacs.sendall(_pdu((0x02, b"cd")))
    assert _read(ours, keep_data=True) == (bytearray(command), bytearray(b"abcd"))
    pacs.sendall(_pdu((0x03, command)) + _pdu((0x02, b"ef")))
    assert _read(ours, keep_data=False) == (bytearray(command), bytearray())  # data dropped


def test_a_command_set_that_never_ends_is_aborted_at_its_bound(pair) -> None:  # noqa: ANN001
    ours, pacs = pair
    endless = (_pdu((0x01, b"\0" * PDV)) for _ in range(10**6))  # never the last fragment
    _send_in_background(pacs, endless)
    with pytest.raises(PeerEnded, match=f"command set over {LARGEST_COMMAND} bytes"):
        _read(ours, keep_data=False)
    assert _abort_received(pacs)


def test_a_response_data_set_without_end_is_aborted_at_its_bound(pair) -> None:  # noqa: ANN001
    ours, pacs = pair
    endless = (_pdu((0x00, b"\0" * PDV)) for _ in range(10**6))  # never the last fragment
    _send_in_background(pacs, itertools.chain([_pdu((0x03, HAS_DATA))], endless))
    with pytest.raises(PeerEnded, match=f"data set over {LARGEST_RESPONSE_DATA} bytes"):
        _read(ours, keep_data=True)
    assert _abort_received(pacs)


def _abort_received(pacs: socket.socket) -> bool:
    """The PACS side finds an A-ABORT PDU (type 0x07) in what we wrote to it."""
    return pacs.recv(len(_ABORT_PDU)) == _ABORT_PDU
