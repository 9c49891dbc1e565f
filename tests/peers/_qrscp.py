"""Run pynetdicom's own ``qrscp`` application, unchanged, with what the app lacks.

* TCP_NODELAY and the reactor-race guard on every association (``_pynetdicom_fixes``):
  without them each DIMSE message may wait ~40 ms, and a C-MOVE sub-operation may hang for a
  whole DIMSE timeout.
* ``--uncompressed-only`` (consumed here): accept only the uncompressed transfer syntaxes,
  like a PACS that refuses compressed data.

Usage: ``python _qrscp.py [--uncompressed-only] <qrscp arguments>`` (see ``peers.dicom``).
"""

from __future__ import annotations

import sys

from _pynetdicom_fixes import patch_process

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"]


def main(argv: list[str]) -> None:
    patch_process()
    from pynetdicom.apps.qrscp import qrscp

    if "--uncompressed-only" in argv:
        argv = [arg for arg in argv if arg != "--uncompressed-only"]
        qrscp.ALL_TRANSFER_SYNTAXES = UNCOMPRESSED  # type: ignore[attr-defined]
    qrscp.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
