"""A TCP proxy in front of dcmqrscp that lets one *storage* association through at a time.

Why: DCMTK 3.6.7's dcmqrscp forks per association and names stored files from ``time(NULL)``
(``DB_makeNewStoreFileName``: same seed in every child within one second), so two associations
storing at the same moment can pick the same file name: one instance overwrites the other
while both are indexed (seen with 2 parallel associations in ~1 of 5 studies). Its
``--single-process`` mode would avoid that but crashes after the first association.

The proxy reads each connection's A-ASSOCIATE-RQ; when it proposes a storage SOP class
(1.2.840.10008.5.1.4.1.1.*) the connection waits for the previous storage association to end
(at most ``WAIT`` seconds, then goes ahead anyway, so nothing can hang on a forgotten
association). Other associations (echo, find, move) pass straight through, so dcmqrscp still
serves them in parallel; C-MOVE sub-associations go from dcmqrscp to the destination directly.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

STORAGE_PREFIX = b"1.2.840.10008.5.1.4.1.1."
WAIT = 20.0
CHUNK = 1 << 16


class StoreSerializingProxy:
    def __init__(self, host: str, port: int, backend_port: int) -> None:
        self.host = host
        self.backend_port = backend_port
        self._store_lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
            self._listener.listen(64)
        except OSError:
            self._listener.close()
            raise
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(
            target=self._accept_loop, name=f"dcmqrscp-proxy-{port}", daemon=True
        ).start()

    def close(self) -> None:
        with self._guard:
            self._closed = True
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _track(self, sock: socket.socket) -> bool:
        with self._guard:
            if self._closed:
                sock.close()
                return False
            self._sockets.add(sock)
            return True

    def _forget(self, *sockets: socket.socket) -> None:
        with self._guard:
            for sock in sockets:
                self._sockets.discard(sock)
        for sock in sockets:
            sock.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._track(client):
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream: socket.socket | None = None
        locked = False
        try:
            first = _read_pdu(client)
            if first is None:
                return
            if first[0] == 0x01 and STORAGE_PREFIX in b"".join(_abstract_syntaxes(first)):
                locked = self._store_lock.acquire(timeout=WAIT)
            upstream = socket.create_connection((self.host, self.backend_port), timeout=10)
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._track(upstream):
                return
            upstream.sendall(first)
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()
        except OSError:
            pass
        finally:
            if locked:
                self._store_lock.release()
            self._forget(client, *([upstream] if upstream is not None else []))


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_pdu(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 6)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header[2:6])
    if length > 1 << 20:  # not an association request: pass it on as it is
        return header
    body = _read_exactly(sock, length)
    return None if body is None else header + body


def _abstract_syntaxes(pdu: bytes) -> list[bytes]:
    """Abstract syntax UIDs proposed in an A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
    found: list[bytes] = []
    offset = 6 + 68
    while offset + 4 <= len(pdu):
        item_type = pdu[offset]
        (item_length,) = struct.unpack(">H", pdu[offset + 2 : offset + 4])
        if item_type == 0x20:  # presentation context: 4 bytes, then sub-items
            sub = offset + 8
            end = offset + 4 + item_length
            while sub + 4 <= end:
                (sub_length,) = struct.unpack(">H", pdu[sub + 2 : sub + 4])
                if pdu[sub] == 0x30:
                    found.append(pdu[sub + 4 : sub + 4 + sub_length].rstrip(b"\0 "))
                sub += 4 + sub_length
        offset += 4 + item_length
    return found


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(CHUNK):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
