"""HL7 v2.5 over MLLP: what pacsbridge tells the PACS and the RIS after an import.

Named ``hl7v2`` so that it never shadows the ``hl7`` library (python-hl7) it uses.

Flow, as the import pipeline uses it (``imports/pipeline``, phases merge and notify):

1. The phase keeps one control id per message in its ledger, so that every attempt resends
   the same MSH-10 and the receiver can discard duplicates.
2. ``messages.build_merge`` (ADT^A40: the external patient merged into the RIS patient, sent
   to the PACS) or ``messages.build_order_archived`` (OMI^O23: the order's images are archived,
   or the import stopped, sent to the RIS) builds the message as a ``str``.
3. ``mllp.send`` frames it, waits for the ACK and checks that MSA-2 echoes our control id.
4. AA/CA: done. No ACK: ``PeerUnavailable`` (retriable, the phase retries). AE/AR/CE/CR:
   ``Hl7Rejected`` with the peer's text. Anything else: ``PeerError``.

This package imports only ``pacsbridge.errors`` and libraries (import-linter, leaf package).
"""

from pacsbridge.hl7v2.messages import (
    EXTERNAL_IMPORT,
    Ack,
    ArchivedStudy,
    MessageIds,
    OrderRef,
    PatientRef,
    build_merge,
    build_order_archived,
    read_ack,
)
from pacsbridge.hl7v2.mllp import send

__all__ = [
    "EXTERNAL_IMPORT",
    "Ack",
    "ArchivedStudy",
    "MessageIds",
    "OrderRef",
    "PatientRef",
    "build_merge",
    "build_order_archived",
    "read_ack",
    "send",
]
