"""C-ECHOs on one association while its reactor is woken again and again.

A ``send_*()`` method pauses the association's reactor (``_reactor_checkpoint``) and waits
for it to say it is paused (``_is_paused``) before it takes its response off the DIMSE queue.
A reactor that says so while it can still go on to read that queue takes the response itself,
and the ``send_*()`` call then waits for an answer that already came. A thread here wakes the
reactor as fast as it can (``_reactor_wake``, 0002's event; unpatched, its 1 ms loop runs
anyway), so that it is nearly always between waking and reading: every C-ECHO must still get
its own response.
"""

import json
import sys
import threading

import pynetdicom
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification

_config.LOG_HANDLER_LEVEL = "none"
ECHOES = int(sys.argv[1])

ae = AE()
ae.dimse_timeout = 2
ae.add_supported_context(Verification)
ae.add_requested_context(Verification)
server = ae.start_server(("127.0.0.1", 0), block=False)
assoc = ae.associate("127.0.0.1", server.server_address[1])
wake = getattr(assoc, "_reactor_wake", None) or threading.Event()
stop = threading.Event()


def keep_waking() -> None:
    while not stop.is_set():
        wake.set()


waker = threading.Thread(target=keep_waking, daemon=True)
waker.start()
lost = 0
for _ in range(ECHOES):
    status = assoc.send_c_echo()
    if "Status" not in status:  # the DIMSE timeout: the response went elsewhere
        lost += 1
        break  # pynetdicom aborts the association after a lost response
stop.set()
waker.join()
if assoc.is_established:
    assoc.release()
server.shutdown()
print(json.dumps({"pynetdicom": pynetdicom.__file__, "lost": lost, "released": assoc.is_released}))
