"""Fixtures of the ATNA tests: a real rsyslog collector (TCP or TLS, its certificate from the
suite's test PKI ``pki``, tests/peers/pki.py) and the A.5.1 schema."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from atna.collector import Rsyslog
from peers.pki import Pki
from retrievals.conftest import load_study, make_gateway  # noqa: F401 - the retrieval tests'


@pytest.fixture(scope="session")
def schema() -> etree.RelaxNG:
    """The package's RELAX NG schema of PS3.15 A.5.1, as lxml reads it."""
    text = resources.files("pacsbridge.atna").joinpath("schema/dicom-audit-message.rng")
    return etree.RelaxNG(etree.fromstring(text.read_bytes()))


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Rsyslog]:
    rsyslog = Rsyslog(tmp_path / "rsyslog")
    rsyslog.start()
    yield rsyslog
    rsyslog.stop()


@pytest.fixture
def tls_collector(tmp_path: Path, pki: Pki) -> Iterator[Rsyslog]:
    """A TLS collector whose certificate the test CA signed (valid for 127.0.0.1)."""
    rsyslog = Rsyslog(tmp_path / "rsyslog-tls", tls=pki.issue("rsyslog"))
    rsyslog.start()
    yield rsyslog
    rsyslog.stop()
