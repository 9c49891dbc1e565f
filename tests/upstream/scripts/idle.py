"""C-ECHO latency on one association, then how often its reactors wake while it is idle.

Wake-ups are counted by wrapping the reactors' per-step calls on this requestor association:
the DUL's ``_process_recv_primitive`` (called once per DUL reactor step) and the DIMSE
provider's ``get_msg`` (called once per association reactor step).
"""

import json
import statistics
import sys
import time

import pynetdicom
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification

_config.LOG_HANDLER_LEVEL = "none"
IDLE_S = float(sys.argv[1])

ae = AE()
ae.network_timeout = 30
ae.add_supported_context(Verification)
ae.add_requested_context(Verification)
server = ae.start_server(("127.0.0.1", 0), block=False)
port = server.server_address[1]
setup = []
for _ in range(10):
    start = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port)
    setup.append(time.perf_counter() - start)
    assoc.release()
assoc = ae.associate("127.0.0.1", port)
echo = []
for _ in range(100):
    start = time.perf_counter()
    assert assoc.send_c_echo().Status == 0x0000
    echo.append(time.perf_counter() - start)

counts = {"dul": 0, "assoc": 0}
step, get_msg = assoc.dul._process_recv_primitive, assoc.dimse.get_msg


def counted_step():
    counts["dul"] += 1
    return step()


def counted_get_msg(*args, **kwargs):
    counts["assoc"] += 1
    return get_msg(*args, **kwargs)


assoc.dul._process_recv_primitive = counted_step
assoc.dimse.get_msg = counted_get_msg
cpu = time.process_time()
time.sleep(IDLE_S)
cpu = time.process_time() - cpu
idle = dict(counts)
assoc.dimse.get_msg = get_msg
assert assoc.send_c_echo().Status == 0x0000  # still served after the idle spell
assoc.release()
released = assoc.is_released
server.shutdown()
print(
    json.dumps(
        {
            "pynetdicom": pynetdicom.__file__,
            "dul_steps_per_s": idle["dul"] / IDLE_S,
            "assoc_steps_per_s": idle["assoc"] / IDLE_S,
            "idle_cpu_s_per_s": cpu / IDLE_S,
            "echo_ms": statistics.median(echo) * 1e3,
            "setup_ms": statistics.median(setup) * 1e3,
            "released": released,
        }
    )
)
