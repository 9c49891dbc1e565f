"""DICOM TLS (PS3.15 Annex B, BCP 195) against real peers: DCMTK storescp/storescu/echoscu with
``+tls`` and Orthanc with DICOM TLS on, certificates from the test CA of ``peers.pki``."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from typer.testing import CliRunner

from pacsbridge import cli
from pacsbridge.context import Network
from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.dicomnet import fast_store
from pacsbridge.dicomnet.echo import c_echo
from pacsbridge.dicomnet.find import find_instance_uids, find_study
from pacsbridge.dicomnet.move import c_move
from pacsbridge.dicomnet.peers import Peer, TlsIdentity
from pacsbridge.dicomnet.scp import StorageSCP, StoreRequest
from pacsbridge.dicomnet.store import c_store
from pacsbridge.dicomnet.wire import read_file_meta
from pacsbridge.errors import PeerTlsRefused, PeerUnavailable
from pacsbridge.settings import Settings
from peers.dicom import HOST, free_port
from peers.pki import Pki
from peers.tls import echoscu_tls, local_ae, storescu_tls, tls_peer

SCP_LOG = "pacsbridge.dicomnet.tls"


def _logged_soon(caplog: pytest.LogCaptureFixture, *words: str) -> str:
    """Our SCP logs a refusal in the association's thread, maybe after the client has gone."""
    deadline = time.monotonic() + 5
    while not all(word in caplog.text for word in words) and time.monotonic() < deadline:
        time.sleep(0.05)
    return caplog.text


def _acceptors_end_within(seconds: float) -> bool:
    """pynetdicom names each acceptor's thread "AcceptorThread@<time>"."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(t.name.startswith("AcceptorThread") for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


def _by_uid(paths: list[Path]) -> dict[str, bytes]:
    """SOP Instance UID → the data set's bytes after the File Meta (what C-STORE carries)."""
    found = {}
    for path in paths:
        meta = read_file_meta(path)
        assert meta is not None, path
        found[meta.sop_instance_uid] = path.read_bytes()[meta.dataset_offset :]
    return found


class _Received:
    """Our TLS Storage SCP's callbacks: who associated, and the files it wrote."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.callers, self.lock = folder, [], threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def admit(self, calling_ae: str, address: str) -> bool:
        with self.lock:
            self.callers.append(calling_ae)
        return True

    def store(self, request: StoreRequest) -> int:
        request.write_to(self.folder / f"{request.sop_instance_uid}.dcm")
        return 0

    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir())


@pytest.fixture
def our_tls_scp(pki: Pki, tmp_path: Path) -> Iterator[Callable[..., tuple[StorageSCP, _Received]]]:
    """``make(port=0)``: our Storage SCP with TLS on, presenting ``pacsbridge``'s certificate."""
    started: list[StorageSCP] = []

    def make(port: int = 0) -> tuple[StorageSCP, _Received]:
        received = _Received(tmp_path / f"received-{len(started) + 1}")
        local = replace(local_ae(pki.issue("pacsbridge")), tls_scp=True)
        scp = StorageSCP(local, HOST, port or free_port(), received.store, received.admit)
        scp.start()
        started.append(scp)
        return scp, received

    yield make
    for scp in started:
        scp.stop()


# -- we are the SCU ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Large instances (several PDUs each, even at 128 KB) and small ones (one PDU each)."""
    folder = tmp_path_factory.mktemp("mixed")
    large = SampleStudy(series_count=1, instances_per_series=3, rows=800, columns=800)
    small = SampleStudy(series_count=1, instances_per_series=4)
    return write_loose(folder / "large", [large], junk=False) + write_loose(
        folder / "small", [small], junk=False
    )


@pytest.mark.parametrize("max_pdu", [16384, 131072])
@pytest.mark.parametrize("fast", [True, False], ids=["fast-store", "pynetdicom-store"])
def test_c_store_to_storescp_over_tls_arrives_byte_identical(
    pki: Pki,
    tls_storescp: Any,
    mixed_files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    fast: bool,
    max_pdu: int,
) -> None:
    scp = tls_storescp(pki.issue("storescp"), max_pdu=max_pdu)
    sent_on: list[type] = []
    real_send = fast_store._sendmsg_all
    monkeypatch.setattr(
        fast_store, "_sendmsg_all", lambda s, b: (sent_on.append(type(s)), real_send(s, b))
    )
    local = local_ae(pki.issue("pacsbridge"), fast_store=fast)

    outcomes = list(c_store(local, scp.peer(), mixed_files, associations=2))

    assert sorted(o.path for o in outcomes) == sorted(mixed_files)
    assert all(o.ok and o.status == 0 for o in outcomes), outcomes
    assert _by_uid(scp.files()) == _by_uid(mixed_files)
    # the fast path really ran, on the TLS socket, or not at all
    assert all(issubclass(kind, ssl.SSLSocket) for kind in sent_on)
    assert len(sent_on) == (len(mixed_files) if fast else 0)  # one send per instance here


def test_killed_tls_storescp_mid_transfer_gives_retriable_outcomes_at_once(
    pki: Pki, tls_storescp: Any, tmp_path: Path
) -> None:
    study = SampleStudy(series_count=1, instances_per_series=30, rows=512, columns=512)
    files = write_loose(tmp_path / "media", [study], junk=False)
    scp = tls_storescp(pki.issue("storescp"))
    killer = threading.Thread(target=_kill_after_first_file, args=(scp,))
    killer.start()
    started = time.monotonic()

    outcomes = list(c_store(local_ae(pki.issue("pacsbridge")), scp.peer(), files))

    killer.join()
    assert time.monotonic() - started < 15  # the broken TLS link ended the transfer, no timeout
    assert sorted(o.path for o in outcomes) == sorted(files)
    failed = [o for o in outcomes if not o.ok]
    assert failed and all(o.retriable and o.detail for o in failed)
    complete = [p for p in scp.files() if read_file_meta(p) is not None]  # not the cut one
    stored = _by_uid(complete)
    ours = _by_uid(files)
    assert all(stored.get(o.sop_instance_uid) == ours[o.sop_instance_uid] for o in outcomes if o.ok)


def _kill_after_first_file(scp: Any) -> None:
    deadline = time.monotonic() + 30
    while not scp.files() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(scp.process.pid, signal.SIGKILL)


def test_a_tls_port_does_not_answer_plain_dicom(pki: Pki, tls_storescp: Any) -> None:
    """Proves the stores above went over TLS: the same port refuses a plain association."""
    scp = tls_storescp(pki.issue("storescp"))
    with pytest.raises(PeerUnavailable):
        c_echo(local_ae(None), replace(scp.peer(), tls=False))


def test_storescp_certificate_from_an_untrusted_ca_raises_peer_tls_refused(
    pki: Pki, tls_storescp: Any
) -> None:
    scp = tls_storescp(pki.issue("storescp", untrusted=True), trusted=False)
    with pytest.raises(PeerTlsRefused) as raised:
        c_echo(local_ae(pki.issue("pacsbridge")), scp.peer())
    detail = "the peer's certificate was not accepted: unable to get local issuer certificate"
    assert raised.value.detail == detail
    message = raised.value.as_dict()["message"]
    assert message == "Connessione TLS con test storescp (TLS) rifiutata: certificato non valido"
    assert raised.value.code == "peer_tls_refused" and not raised.value.retriable


def test_storescp_expired_certificate_raises_peer_tls_refused(pki: Pki, tls_storescp: Any) -> None:
    scp = tls_storescp(pki.issue("storescp", expired=True), trusted=False)
    with pytest.raises(PeerTlsRefused) as raised:
        c_echo(local_ae(pki.issue("pacsbridge")), scp.peer())
    assert "expired" in raised.value.detail


def test_storescp_refusing_our_untrusted_certificate_raises_peer_tls_refused(
    pki: Pki, tls_storescp: Any
) -> None:
    scp = tls_storescp(pki.issue("storescp"))
    with pytest.raises(PeerTlsRefused) as raised:
        c_echo(local_ae(pki.issue("pacsbridge", untrusted=True)), scp.peer())
    assert "refused our certificate" in raised.value.detail


def test_tls_server_name_is_checked_only_when_configured(pki: Pki, tls_storescp: Any) -> None:
    scp = tls_storescp(pki.issue("storescp", dns="pacs.ospedale.test"))
    local = local_ae(pki.issue("pacsbridge"))
    assert c_echo(local, scp.peer()) == 0  # by address: the chain is what counts
    assert c_echo(local, scp.peer(server_name="pacs.ospedale.test")) == 0
    with pytest.raises(PeerTlsRefused) as raised:
        c_echo(local, scp.peer(server_name="other.ospedale.test"))
    assert "Hostname mismatch" in raised.value.detail


def test_tls_to_a_plain_dicom_port_is_unavailable_not_a_certificate_error(
    pki: Pki, storescp: Any
) -> None:
    plain = storescp()
    peer = tls_peer(plain.ae_title, plain.port, "plain storescp")
    with pytest.raises(PeerUnavailable) as raised:
        c_echo(local_ae(pki.issue("pacsbridge")), peer)
    assert not isinstance(raised.value, PeerTlsRefused)
    assert "TLS handshake failed" in raised.value.detail


def test_unreadable_own_certificate_is_a_tls_error_naming_our_files(
    pki: Pki, tmp_path: Path
) -> None:
    issued = replace(pki.issue("pacsbridge"), certificate=tmp_path / "missing.crt")
    with pytest.raises(PeerTlsRefused) as raised:
        c_echo(local_ae(issued), tls_peer("ANY", free_port(), "nobody"))
    assert "our TLS certificate" in raised.value.detail


# -- we are the SCP ---------------------------------------------------------------------------


def test_storescu_over_tls_stores_byte_identical_into_our_tls_scp(
    pki: Pki, our_tls_scp: Any, study_files: Any
) -> None:
    _, paths = study_files
    scp, received = our_tls_scp()
    code, output = storescu_tls(
        pki.issue("storescu"), pki.ca_certificates, "PACSBRIDGE", scp.port, paths
    )
    assert code == 0, output
    assert _by_uid(received.files()) == _by_uid(paths)
    assert received.callers == ["STORESCU"]


def test_our_tls_scp_refuses_a_client_without_certificate(
    pki: Pki, our_tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scp, received = our_tls_scp()
    with caplog.at_level(logging.WARNING, logger=SCP_LOG):
        code, output = echoscu_tls(None, pki.ca_certificates, "PACSBRIDGE", scp.port)
        logged = _logged_soon(caplog, "presented no certificate")
    assert code != 0, output
    assert received.callers == []  # refused before any A-ASSOCIATE-RQ was read
    assert _acceptors_end_within(1.0)  # not held for the ACSE timeout (5 s here)
    assert (
        "DICOM TLS connection from 127.0.0.1 refused: the peer presented no certificate" in logged
    )


def test_our_tls_scp_refuses_a_client_certificate_from_an_untrusted_ca(
    pki: Pki, our_tls_scp: Any, study_files: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, paths = study_files
    scp, received = our_tls_scp()
    rogue = pki.issue("storescu", untrusted=True)
    with caplog.at_level(logging.WARNING, logger=SCP_LOG):
        code, output = storescu_tls(rogue, pki.ca_certificates, "PACSBRIDGE", scp.port, paths)
        logged = _logged_soon(caplog, "unable to get local issuer certificate")
    assert code != 0, output
    assert received.callers == [] and received.files() == []
    assert "DICOM TLS connection from 127.0.0.1 refused: the peer's certificate" in logged
    assert "unable to get local issuer certificate" in logged


def test_our_tls_scp_refuses_plain_dicom(pki: Pki, our_tls_scp: Any) -> None:
    scp, received = our_tls_scp()
    with pytest.raises(PeerUnavailable):
        c_echo(local_ae(None), Peer("PACSBRIDGE", HOST, scp.port, "us"))
    assert received.callers == []


def test_a_silent_client_does_not_stop_our_tls_scp_accepting_others(
    pki: Pki, our_tls_scp: Any
) -> None:
    """The handshake runs in the association's thread: a connection that never speaks TLS
    does not hold pynetdicom's accept loop."""
    import socket

    scp, received = our_tls_scp()
    with socket.create_connection((HOST, scp.port)):
        code, output = echoscu_tls(pki.issue("echoscu"), pki.ca_certificates, "X", scp.port)
    assert code == 0, output
    assert received.callers == ["ECHOSCU"]


# -- Orthanc with DICOM TLS: C-ECHO, C-FIND, C-MOVE to our TLS Storage SCP ---------------------


def test_echo_find_and_move_with_orthanc_over_tls_into_our_tls_scp(
    pki: Pki, tls_orthanc: Any, our_tls_scp: Any, study_files: Any
) -> None:
    study, paths = study_files
    port = free_port()
    orthanc = tls_orthanc(pki.issue("orthanc"), {"PACSBRIDGE": (HOST, port)})
    orthanc.load(paths)
    local = local_ae(pki.issue("pacsbridge"))
    peer = orthanc.tls_peer()
    scp, received = our_tls_scp(port)

    assert c_echo(local, peer) == 0
    found = find_study(local, peer, study.study_instance_uid)
    assert found is not None and found.patient_id == study.patient.patient_id
    assert find_instance_uids(local, peer, study.study_instance_uid) == set(_by_uid(paths))
    identifier = Dataset()
    identifier.StudyInstanceUID = study.study_instance_uid
    result = c_move(local, peer, "PACSBRIDGE", identifier, "STUDY")

    assert result.status == 0 and result.completed == len(paths), result
    assert set(_by_uid(received.files())) == set(_by_uid(paths))
    assert received.callers and set(received.callers) == {"PACS"}


# -- settings and `pacsbridge check` ----------------------------------------------------------


def _tls_toml(tmp_path: Path, pki: Pki, pacs_port: int, **pacs: str) -> Path:
    ours = pki.issue("pacsbridge")
    extra = "".join(f'{key} = "{value}"\n' for key, value in pacs.items())
    path = tmp_path / "pacsbridge.toml"
    path.write_text(
        f"""
[storage]
data_dir = "{tmp_path / "data"}"
[dicom]
connection_timeout = 3
acse_timeout = 5
[dicom.tls]
cert_file = "{ours.certificate}"
key_file = "{ours.private_key}"
ca_file = "{ours.ca_certificates}"
[pacs]
name = "PACS di reparto"
ae_title = "STORESCP"
host = "127.0.0.1"
port = {pacs_port}
tls = true
{extra}
[[sources]]
name = "ao17"
ae_title = "AO17"
host = "127.0.0.1"
port = 1
tls = true
tls_server_name = "pacs.ao17.test"
""",
        encoding="utf-8",
    )
    return path


def test_tls_without_certificate_files_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"DICOM TLS is on for the PACS: \[dicom.tls\] needs"):
        Settings(pacs={"tls": True}, dicom={"tls": {"cert_file": "ours.crt"}})
    with pytest.raises(ValueError, match="our Storage SCP"):
        Settings(dicom={"tls": {"scp": True}})
    assert Settings().pacs.tls is False  # TLS is off unless asked for


def test_network_from_settings_gives_peers_their_tls(tmp_path: Path, pki: Pki) -> None:
    settings = Settings.load(_tls_toml(tmp_path, pki, 104, tls_server_name="pacs.test"))
    network = Network.from_settings(settings)
    ours = pki.issue("pacsbridge")
    assert network.local.tls == TlsIdentity(
        ours.certificate, ours.private_key, ours.ca_certificates
    )
    assert network.local.tls_scp is False
    assert (network.pacs.tls, network.pacs.tls_server_name) == (True, "pacs.test")
    assert network.sources["ao17"].tls and network.sources["ao17"].tls_server_name == (
        "pacs.ao17.test"
    )


def test_pacsbridge_check_names_the_refused_certificate(
    tmp_path: Path, pki: Pki, tls_storescp: Any
) -> None:
    scp = tls_storescp(pki.issue("storescp", untrusted=True), trusted=False)
    config = _tls_toml(tmp_path, pki, scp.port)

    result = CliRunner().invoke(cli.app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if " PACS: " in line]
    assert line == (
        f"ERR PACS: C-ECHO STORESCP@127.0.0.1:{scp.port} (TLS): peer_tls_refused: "
        "Connessione TLS con PACS di reparto rifiutata: certificato non valido "
        "(the peer's certificate was not accepted: unable to get local issuer certificate)"
    )


def test_pacsbridge_check_passes_a_trusted_tls_pacs(
    tmp_path: Path, pki: Pki, tls_storescp: Any
) -> None:
    scp = tls_storescp(pki.issue("storescp"))
    result = CliRunner().invoke(
        cli.app, ["check", "--config", str(_tls_toml(tmp_path, pki, scp.port))]
    )
    assert f"OK  PACS: C-ECHO STORESCP@127.0.0.1:{scp.port} (TLS) ok" in result.output
    assert "OK  DICOM TLS: certificate, key and trusted CAs load" in result.output


def test_pacsbridge_check_names_unusable_tls_files(tmp_path: Path, pki: Pki) -> None:
    config = _tls_toml(tmp_path, pki, 1)
    other_key = pki.issue("someone-else").private_key
    text = config.read_text().replace(str(pki.issue("pacsbridge").private_key), str(other_key))
    config.write_text(text)

    result = CliRunner().invoke(cli.app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    assert "ERR DICOM TLS: dicom.tls files unusable: SSLError: KEY_VALUES_MISMATCH" in result.output
