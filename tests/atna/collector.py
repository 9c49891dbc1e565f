"""A real rsyslog as the ATNA Audit Record Repository of the tests.

``Rsyslog`` writes its own configuration: imtcp on 127.0.0.1 and a free port (octet-counted
framing, optionally TLS with the gtls driver and a certificate of the suite's one test PKI,
``peers.pki``), omfile writing one JSON line per message with PRI, APP-NAME, MSGID and MSG. It
can be stopped and started again on the same port, to be the collector that was down and came
back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from lxml import etree

from peers.pki import Issued

RSYSLOGD = Path("/usr/sbin/rsyslogd")
BOM = "\ufeff"
TEMPLATE = """template(name="atna" type="list") {
  constant(value="{\\"pri\\":\\"") property(name="pri")
  constant(value="\\",\\"app\\":\\"") property(name="app-name" format="json")
  constant(value="\\",\\"msgid\\":\\"") property(name="msgid" format="json")
  constant(value="\\",\\"msg\\":\\"") property(name="msg" format="json")
  constant(value="\\"}\\n")
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rsyslog:
    """rsyslogd -n -f <conf> -i <pidfile>, listening on ``port``, writing ``output``."""

    def __init__(
        self, folder: Path, tls: Issued | None = None, client_certificates: bool = False
    ) -> None:
        """``tls``: the collector's certificate and key, and the CAs it trusts for a client's
        certificate (with ``client_certificates``, it asks for one and checks it)."""
        if not RSYSLOGD.exists():
            raise RuntimeError("rsyslogd missing: run scripts/install-test-deps (apt rsyslog)")
        self.folder, self.tls = folder, tls
        self.client_certificates = client_certificates
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.output = folder / "received.jsonl"
        self.conf = folder / "rsyslog.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self.conf.write_text(self._config())

    def _config(self) -> str:
        work = self.folder / "work"
        work.mkdir(exist_ok=True)
        glob = [
            f'workDirectory="{work}"',
            'maxMessageSize="256k"',
            'parser.escapeControlCharactersOnReceive="off"',
        ]
        driver = ""
        if self.tls is not None:
            glob += [
                'defaultNetstreamDriver="gtls"',
                f'defaultNetstreamDriverCAFile="{self.tls.ca_certificates}"',
                f'defaultNetstreamDriverCertFile="{self.tls.certificate}"',
                f'defaultNetstreamDriverKeyFile="{self.tls.private_key}"',
            ]
            mode = "x509/certvalid" if self.client_certificates else "anon"
            driver = (
                f' StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="{mode}"'
            )
        return (
            f"global({' '.join(glob)})\n"
            f'module(load="imtcp"{driver})\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
            + TEMPLATE
            + f'action(type="omfile" file="{self.output}" template="atna")\n'
        )

    def start(self) -> None:
        log = (self.folder / "rsyslogd.log").open("ab")
        self.process = subprocess.Popen(
            [str(RSYSLOGD), "-n", "-f", str(self.conf), "-i", str(self.folder / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {(self.folder / 'rsyslogd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("rsyslogd did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def messages(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        lines = self.output.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for(self, count: int, seconds: float = 15) -> list[dict[str, Any]]:
        """At least ``count`` messages received (rsyslog writes at the end of each batch)."""
        deadline = time.monotonic() + seconds
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def assert_valid(schema: etree.RelaxNG, xml: bytes) -> etree._Element:
    """The parsed message, after checking it against the A.5.1 schema."""
    root = etree.fromstring(xml)
    assert schema.validate(root), schema.error_log
    return root


def xml_of(received: dict[str, Any]) -> bytes:
    """The audit message of one received syslog message (BOM removed, RFC 5424 6.4)."""
    return received["msg"].removeprefix(BOM).lstrip().encode("utf-8")
