"""The Prometheus instruments the domains count into (docs/operations.md, "Metrics").

Only what happens inside a process is counted here: phase durations, instances and bytes
stored and received, C-STORE and C-MOVE failures, HTTP requests. What the database already
knows (imports and retrievals by state, the cache) and what the machine knows (queue depth,
disk) is read at scrape time by ``operations.exposition``, so it is the same whichever
process answers the scrape.

Labels are route templates, phase names, configured peer names and DICOM statuses: never a
patient, a UID or a path (docs/logging.md applies to metrics too).

With several processes on one host, prometheus-client's multiprocess mode keeps each
process's values in files under ``PROMETHEUS_MULTIPROC_DIR``; the library reads that variable
when it is first imported, so it must be in the environment before the process starts.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Phase durations span a C-ECHO (milliseconds) to a DVD's C-STORE (an hour).
PHASE_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600)

PHASE_SECONDS = Histogram(
    "pacsbridge_import_phase_duration_seconds",
    "Duration of one attempt of an import pipeline phase, by phase and outcome.",
    ["phase", "outcome"],
    buckets=PHASE_BUCKETS,
)
RETRIEVAL_SECONDS = Histogram(
    "pacsbridge_retrieval_move_duration_seconds",
    "Duration of one study's C-MOVE (with its quiet period and IMAGE-level retry), by source.",
    ["source", "outcome"],
    buckets=PHASE_BUCKETS,
)
INSTANCES_STORED = Counter(
    "pacsbridge_instances_stored",
    "Instances the PACS accepted (C-STORE success) during imports, by PACS.",
    ["peer"],
)
BYTES_STORED = Counter(
    "pacsbridge_bytes_stored",
    "Bytes of the files the PACS accepted during imports, by PACS.",
    ["peer"],
)
STORE_FAILURES = Counter(
    "pacsbridge_store_failures",
    "C-STORE sub-operations that failed during imports, by PACS and DICOM status "
    "('none': no response).",
    ["peer", "status"],
)
INSTANCES_RECEIVED = Counter(
    "pacsbridge_instances_received",
    "Instances our Storage SCP received and cached during retrievals, by source.",
    ["source"],
)
BYTES_RECEIVED = Counter(
    "pacsbridge_bytes_received",
    "Bytes our Storage SCP received and cached during retrievals, by source.",
    ["source"],
)
MOVE_FAILURES = Counter(
    "pacsbridge_move_failures",
    "C-MOVE requests that failed, by source and DICOM status ('none': no response).",
    ["peer", "status"],
)
HTTP_REQUESTS = Counter(
    "pacsbridge_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)


def dicom_status(status: int | None) -> str:
    """A status as a label: ``0xA700``, or ``none`` when the peer never answered."""
    return "none" if status is None else f"0x{status:04X}"


ATNA_SENT = Counter(
    "pacsbridge_atna_messages_sent",
    "DICOM audit messages written to the ATNA collector (docs/atna.md).",
)
ATNA_DROPPED = Counter(
    "pacsbridge_atna_messages_dropped",
    "DICOM audit messages not spooled, by reason (spool_full, unbuilt).",
    ["reason"],
)
ATNA_SEND_FAILURES = Counter(
    "pacsbridge_atna_send_failures",
    "Attempts to reach the ATNA collector that failed (connect, TLS, write).",
)
