"""One realistic audit event per kind that becomes an ATNA message, with the details the call
sites write (tests/atna checks each message against the schema)."""

from __future__ import annotations

import base64
from typing import Any

from pydicom import Dataset

from pacsbridge.dicomnet.find import encoded_identifier, study_query

STUDY = "1.2.826.0.1.3680043.8.498.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
PATIENT = {"patient_id": "IOTELU1234", "issuer": "AO17", "accession_number": "ACC1"}
STORED = {**PATIENT, "study_instance_uids": [STUDY], "sop_classes": {STUDY: {CT: 6}}}
QUERY = encoded_identifier(study_query(STUDY), "STUDY")
SERIES = Dataset()
SERIES.StudyInstanceUID, SERIES.SeriesInstanceUID = STUDY, ""
SERIES_QUERY = encoded_identifier(SERIES, "SERIES")
MOVE = {**PATIENT, "study_instance_uid": STUDY, "source_ae_title": "SRC", "level": "STUDY"}
EXPORT_URI = "https://pacsbridge.example/support/audit/export?dal=2026-12-01&al=2026-12-02"

#: kind → (record keyword arguments, EventID code expected)
EVENTS: dict[str, tuple[dict[str, Any], str]] = {
    "store.started": ({**STORED}, "110102"),
    "store.completed": ({**STORED}, "110104"),
    "retrieval.move_started": ({**MOVE, "source_host": "127.0.0.1"}, "110102"),
    "retrieval.moved": ({**MOVE, "source_host": "127.0.0.1", "code": "0x0000"}, "110104"),
    "duplicates.queried": ({"study_instance_uid": STUDY, "query": QUERY}, "110112"),
    "retrieval.queried": (
        {**PATIENT, "peer_ae_title": "SRC", "peer_host": "pacs.example", "query": QUERY},
        "110112",
    ),
    "retrieval.described": (
        {**PATIENT, "peer_ae_title": "SRC", "level": "SERIES", "query": SERIES_QUERY},
        "110112",
    ),
    "store.queried": (
        {**PATIENT, "study_instance_uid": STUDY, "level": "SERIES", "query": SERIES_QUERY},
        "110112",
    ),
    "patient.merged": ({**PATIENT, "merged_patient_id": "EXT-77", "merged_issuer": ""}, "110110"),
    "images.viewed": (
        {"actor": "viewer-link", "study_instance_uids": [STUDY], **PATIENT, "via": "viewer"},
        "110103",
    ),
    "package.downloaded": (
        {
            "actor": "fse-lombardia",
            "address": "10.9.8.7",
            "study_instance_uids": [STUDY],
            **PATIENT,
        },
        "110103",
    ),
    "staff.signed_in": ({"actor": "mrossi", "address": "10.1.2.3"}, "110114"),
    "staff.sign_in_failed": (
        {"actor": "mrossi", "address": "10.1.2.3", "reason": "wrong_password", "outcome": "error"},
        "110114",
    ),
    "staff.signed_out": ({"actor": "mrossi", "address": "10.1.2.3"}, "110114"),
    "audit.exported": (
        {"actor": "mrossi", "address": "10.1.2.3", "format": "csv", "uri": EXPORT_URI},
        "110101",
    ),
}


def decoded_query(element_text: str) -> bytes:
    return base64.b64decode(element_text)
