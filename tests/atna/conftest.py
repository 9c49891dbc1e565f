"""Fixtures of the ATNA tests: a real rsyslog collector (TCP or TLS) and the A.5.1 schema."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from atna.collector import Rsyslog, TestCA, make_ca
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
def test_ca(tmp_path: Path) -> TestCA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def tls_collector(tmp_path: Path, test_ca: TestCA) -> Iterator[Rsyslog]:
    rsyslog = Rsyslog(tmp_path / "rsyslog-tls", tls=test_ca)
    rsyslog.start()
    yield rsyslog
    rsyslog.stop()
