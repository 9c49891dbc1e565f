"""C-MOVE outcomes → clear errors: DICOM status, retriable or not, likely cause in Italian.

The hospital's PACS administrator reads these, so each explanation names what to check on
their side ("each with its DICOM status and an Italian explanation of the likely
cause"). Statuses from PS3.4 C.4.2.1.5 (Study Root Q/R MOVE) and PS3.7 C.
"""

from __future__ import annotations

from typing import Any

from pacsbridge.errors import PacsbridgeError, PeerRefused, PeerUnavailable
from pacsbridge.messages import Said, said
from pacsbridge.settings import Settings

#: status → (message key of the explanation, retriable)
MOVE_STATUSES: dict[int, tuple[str, bool]] = {
    0xA801: ("retrieval.move_destination_unknown", False),  # Move destination unknown
    0xA701: ("retrieval.move_out_of_resources", True),  # Out of resources: number of matches
    0xA702: ("retrieval.move_out_of_resources", True),  # Out of resources: sub-operations
    0xA900: ("retrieval.move_identifier_mismatch", False),  # Identifier does not match SOP class
    0xFE00: ("retrieval.move_cancelled", True),  # Cancel
    0x0122: ("retrieval.move_not_supported", False),  # Refused: SOP Class not supported
    0x0124: ("retrieval.move_not_authorised", False),  # Refused: Not authorised
}
UNABLE_TO_PROCESS = ("retrieval.move_unable_to_process", True)  # 0xCxxx


def explain(status: int) -> tuple[str, bool]:
    """The explanation key and retriable flag of a failure status."""
    if status in MOVE_STATUSES:
        return MOVE_STATUSES[status]
    if status & 0xF000 == 0xC000:
        return UNABLE_TO_PROCESS
    return ("retrieval.move_failed", False)


def move_error(status: int, source: str, **params: Any) -> PacsbridgeError:
    """The error a failed C-MOVE raises: PeerUnavailable when a later attempt may pass.

    With failed sub-operations the status says less than the counts: dcmqrscp answers A702
    ("out of resources") when every C-STORE to us failed, so the explanation is then about
    the sub-operations (our AE unreachable or refusing), whatever the status.
    """
    key, retriable = explain(status)
    if params.get("failed"):
        key = "retrieval.move_sub_operations_failed"
    cls = PeerUnavailable if retriable else PeerRefused
    return cls(
        f"C-MOVE status 0x{status:04X}",
        peer=source,
        dicom_status=f"0x{status:04X}",
        explanation=key,
        **params,
    )


def entry(error: PacsbridgeError, at: str, settings: Settings, **context: Any) -> dict[str, Any]:
    """An error as a retrieval stores it: code, message key, DICOM status, explanation, when.

    Messages stay keys and parameters; ``retrievals.views`` says them in the reader's language.
    """
    params = {**our_node(settings), **error.params}
    found = {**error.stored(), "at": at, **context}
    if params.get("dicom_status"):
        found["dicom_status"] = params["dicom_status"]
    if params.get("explanation"):
        found["explanation"] = said(params["explanation"], **params)
    return found


def said_of(entry: dict[str, Any]) -> Said | str:
    """What an entry says (its explanation first), for the audit; words if stored before keys."""
    explanation = entry.get("explanation")
    if explanation:
        return explanation
    if entry.get("key"):
        return {"key": entry["key"], "params": entry.get("params") or {}}
    return str(entry.get("message", ""))


def our_node(settings: Settings) -> dict[str, Any]:
    """Our AE as the hospital must register it: named in the explanations."""
    dicom = settings.dicom
    host = settings.fse.advertised_host or dicom.host
    return {"our_ae": dicom.ae_title, "our_host": host, "our_port": dicom.port}


def note(key: str, **params: Any) -> dict[str, Any]:
    """A warning that is not an error (failed sub-operations later recovered, caps...)."""
    return {"code": key.removeprefix("retrieval."), **said(key, **params), **params}
