"""Hand an association's socket to the caller and back (patch 0003), or show who reads it.

Requestor: a C-ECHO-RQ is written on the raw socket and, 100 ms later, its response is read
there; then the reactor resumes and pynetdicom's own C-ECHO works. Without a pause (the
unpatched copy) the DUL reads that response first. Acceptor: an EVT_ESTABLISHED handler pauses
the DUL, reads the requestor's next PDU (the raw C-ECHO-RQ, a P-DATA-TF) and gives it back
unread, so that pynetdicom answers it as if it had read it: the response the requestor reads on
its raw socket proves the give-back.
"""

import json
import select
import socket
import struct
import sys
import time

import pynetdicom
from pynetdicom import AE, _config, evt
from pynetdicom.dimse_messages import C_ECHO_RQ
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import Verification

_config.LOG_HANDLER_LEVEL = "none"
PAUSE = sys.argv[1] == "pause"
given_back: list[int] = []


def read_pdu(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while len(data) < 6 or len(data) < 6 + struct.unpack(">L", data[2:6])[0]:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    sock.settimeout(None)
    return data


def on_established(event: evt.Event) -> None:
    """Acceptor: read the requestor's next PDU on the raw socket, then give it back unread."""
    dul = event.assoc.dul
    dul.request_pause()
    sock = dul.wait_paused(5)
    assert sock is not None
    pdu = read_pdu(sock)
    given_back.append(pdu[0])
    dul.resume(unread=pdu)


def echo_rq_pdu(message_id: int, context_id: int) -> bytes:
    primitive = C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = Verification
    msg = C_ECHO_RQ()
    msg.primitive_to_message(primitive)
    pdus = []
    for p_data in msg.encode_msg(context_id, 0):
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        pdus.append(pdu.encode())
    return b"".join(pdus)


handlers = [(evt.EVT_ESTABLISHED, on_established)] if PAUSE else []
ae = AE()
ae.add_supported_context(Verification)
ae.add_requested_context(Verification)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
assoc = ae.associate("127.0.0.1", server.server_address[1])
assert assoc.is_established
context_id = assoc.accepted_contexts[0].context_id
result = {"pynetdicom": pynetdicom.__file__}

# Requestor side: the raw socket, paused or not
if PAUSE:
    start = time.perf_counter()
    assoc.dul.request_pause()
    sock = assoc.dul.wait_paused(5)
    result["pause_ms"] = (time.perf_counter() - start) * 1e3
    result["is_paused"] = assoc.dul.is_paused
else:
    sock = assoc.dul.socket.socket
sock.sendall(echo_rq_pdu(99, context_id))
time.sleep(0.1)
readable = bool(select.select([sock], [], [], 0)[0])
result["response_on_raw_socket"] = readable
if readable:
    pdu = read_pdu(sock)
    result["raw_response"] = {"type": pdu[0], "echo_rsp": b"\x30\x80" in pdu}
result["taken_by_pynetdicom"] = not assoc.dimse.msg_queue.empty()
if PAUSE:
    assoc.dul.resume()
    result["is_paused_after_resume"] = assoc.dul.is_paused
    result["echo_after_resume"] = int(assoc.send_c_echo().Status)
    assoc.release()
    time.sleep(0.2)
    result["released"] = assoc.is_released
    result["acceptor_read_and_gave_back"] = given_back
else:
    assoc.abort()
server.shutdown()
print(json.dumps(result))
