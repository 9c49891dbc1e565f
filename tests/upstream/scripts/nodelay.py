"""TCP_NODELAY on both ends of one association, and the time of small C-STOREs on it."""

import json
import sys
import time

import pynetdicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config, evt
from pynetdicom.sop_class import CTImageStorage

_config.LOG_HANDLER_LEVEL = "none"
STORES = int(sys.argv[1])


def small_instance() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "NAGLE"
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


ae = AE()
ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
server = ae.start_server(
    ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)]
)
assoc = ae.associate("127.0.0.1", server.server_address[1])
assert assoc.is_established
(acceptor,) = server.active_associations
nodelay = [
    a.dul.socket.socket.getsockopt(6, 1)  # IPPROTO_TCP, TCP_NODELAY
    for a in (assoc, acceptor)
]
start = time.perf_counter()
for _ in range(STORES):
    assert assoc.send_c_store(small_instance()).Status == 0x0000
elapsed = time.perf_counter() - start
assoc.release()
server.shutdown()
print(json.dumps({"pynetdicom": pynetdicom.__file__, "nodelay": nodelay, "store_s": elapsed}))
