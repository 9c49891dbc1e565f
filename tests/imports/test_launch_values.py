"""RIS values DICOM cannot hold are refused at the launch (422 naming the field), live.

Each value would be written into a DICOM attribute by the reconcile phase: PatientName (PN),
PatientID and IssuerOfPatientID (LO), AccessionNumber (SH), the order number and description
(LO) in the Request Attributes Sequence (PS3.5 §6.2). HL7 v2 delimiters that DICOM can hold
are accepted and escaped in HL7 (tests/hl7v2).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import LAUNCH_BODY, RIS_KEY, bearer
from pacsbridge.settings import Settings
from web.live import LiveServer, free_port


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("launch-values")
    settings = Settings.model_validate(
        {
            "storage": {"data_dir": str(data)},
            "ris": {"api_keys": [RIS_KEY]},
            "jobs": {"backend": "immediate"},
            "web": {"host": "127.0.0.1", "port": free_port()},
        }
    )
    server = LiveServer(settings).start()
    yield server.url
    server.stop()


def post(url: str, section: str, field: str, value: str) -> httpx.Response:
    body: dict[str, Any] = copy.deepcopy(LAUNCH_BODY)
    body[section][field] = value
    return httpx.post(f"{url}/api/v1/launch", json=body, headers=bearer(RIS_KEY))


REFUSED = [
    ("patient", "family_name", "ROSSI^MARIO"),  # would shift MARIO into the given name
    ("patient", "family_name", "ROSSI\\BIANCHI"),  # two PatientName values
    ("patient", "family_name", "ROSSI=BIANCHI"),  # a second component group
    ("patient", "given_name", "MARIO^LUIGI"),
    ("patient", "given_name", "MARIO\\LUIGI"),
    ("patient", "family_name", "ROSSI\rMSH|^~\\&"),  # control characters
    ("patient", "family_name", "R" * 65),  # PN group: 64 characters
    ("patient", "given_name", "M" * 60),  # TEST^ + 60 > 64
    ("patient", "id", "IOTELU\\1234"),  # LO
    ("patient", "id", "I" * 65),
    ("patient", "issuer", "AO\\17"),
    ("order", "accession_number", "ACC\\2"),  # SH
    ("order", "accession_number", "A" * 17),
    ("order", "number", "ORD\\1"),
    ("order", "description", "TC\\RM"),
    ("order", "description", "D" * 65),  # LO 64
]


@pytest.mark.parametrize(("section", "field", "value"), REFUSED)
def test_launch_refuses_a_value_its_dicom_vr_cannot_hold(
    url: str, section: str, field: str, value: str
) -> None:
    answer = post(url, section, field, value)
    assert answer.status_code == 422, answer.text
    fields = [f["field"] for f in answer.json()["error"]["fields"]]
    assert fields == [f"{section}.{field}"]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("patient", "family_name", "O'NEIL|SMITH~JONES&CO"),  # HL7 delimiters DICOM can hold
        ("patient", "family_name", "D'ANNUNZIO NICOLÒ"),
        ("patient", "given_name", "G" * 59),  # TEST^ + 59 = 64
        ("order", "description", "D" * 64),
    ],
)
def test_launch_accepts_values_dicom_can_hold(
    url: str, section: str, field: str, value: str
) -> None:
    assert post(url, section, field, value).status_code == 201
