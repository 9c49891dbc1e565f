"""Pytest plugin with the real peers (``pytest_plugins = ["peers.plugin"]`` in tests/conftest.py).

* DICOM: ``pacs`` (dcmqrscp / orthanc / pynetdicom), ``dcmqrscp_pacs``, ``orthanc_pacs``,
  ``pynetdicom_pacs``, ``pacs_factory``, ``our_scp_address``, ``storescp`` (peers.dicom).
* DICOM faults: ``lossy_pacs`` (peers.lossy_pacs: answers success, keeps not all).
* A PACS address that goes down and up: ``relay`` (peers.relay).
* HL7 v2: ``mllp_listener`` (peers.mllp).
* The staff directory: ``slapd`` (peers.slapd: OpenLDAP on a free port).
* DICOM TLS: ``pki`` (peers.pki: a test CA and certificates), ``tls_storescp``,
  ``tls_orthanc`` (peers.tls).

When a test fails, what its peers logged during the test is added to the report.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from peers.dicom import (  # noqa: F401
    PEER_LOGS,
    _scp_port,
    _shared_pacs,
    dcmqrscp_pacs,
    orthanc_pacs,
    our_scp_address,
    pacs,
    pacs_factory,
    pynetdicom_pacs,
    read_log,
    storescp,
)
from peers.lossy_pacs import lossy_pacs  # noqa: F401
from peers.mllp import mllp_listener  # noqa: F401
from peers.pki import pki  # noqa: F401
from peers.relay import relay  # noqa: F401
from peers.slapd import _shared_slapd, slapd  # noqa: F401
from peers.tls import tls_orthanc, tls_storescp  # noqa: F401

MAX_SECTION = 8000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when == "call":
        for label, path, offset in item.stash.get(PEER_LOGS, []):
            text = read_log(path, offset)
            if len(text) > MAX_SECTION:
                text = "...\n" + text[-MAX_SECTION:]
            report.sections.append((f"{label} log ({path})", text or "(nothing logged)"))
    return report
