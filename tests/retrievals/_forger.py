"""A forged Storage SCU, run as a process of its own: ``python _forger.py SPEC.json``.

SPEC: {"host", "port", "called_ae", "calling_ae", "bind": "127.0.0.2" or "", "files": [...]}.
It claims whatever AE title it is told, binds whatever local address it is told (loopback
accepts any 127/8 address), sends the files with pynetdicom exactly as they are (UID
conformance not enforced, as pynetdicom's default), and prints one JSON line:
{"associated": bool, "rejected": bool, "statuses": [int, ...]}.
"""

from __future__ import annotations

import json
import sys

from pydicom import config, dcmread
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import AE

config.settings.reading_validation_mode = config.IGNORE
config.settings.writing_validation_mode = config.IGNORE


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    ae = AE(ae_title=spec["calling_ae"])
    datasets = [dcmread(path) for path in spec["files"]]
    for syntax in {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}:
        ae.add_requested_context(syntax[0], sorted({syntax[1], ImplicitVRLittleEndian}))
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    bind = (spec["bind"], 0) if spec.get("bind") else None
    assoc = ae.associate(spec["host"], spec["port"], ae_title=spec["called_ae"], bind_address=bind)
    answer = {"associated": assoc.is_established, "rejected": assoc.is_rejected, "statuses": []}
    if assoc.is_established:
        for dataset in datasets:
            status = assoc.send_c_store(dataset)
            answer["statuses"].append(int(status.Status) if "Status" in status else None)
        assoc.release()
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1])
