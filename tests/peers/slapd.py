"""A real OpenLDAP ``slapd`` for the directory sign-in tests (docs/staff.md, "Directory sign-in").

One slapd per test session, a child process on 127.0.0.1 with a free port, run as the current
user from a temporary ``slapd.conf`` (mdb backend, Debian's schemas in /etc/ldap/schema) and
the ``memberof`` overlay, so a user entry lists its groups in ``memberOf`` as Active Directory
does, while the groups list their members in ``member`` as OpenLDAP sites search them.

``allow bind_anon_dn`` makes the server accept a user DN with an empty password as an
(unauthenticated) success, as badly configured directories do: the tests prove that our
sign-in refuses an empty password before the directory is asked.

It speaks TLS too, with a certificate for 127.0.0.1 from a throw-away CA made with openssl:
StartTLS on the ldap:// port (RFC 4513 §3) and ldaps:// on a second port.

Tests isolate themselves by naming their own users (``Slapd.add_user``); the groups are shared
and only their membership changes (``Slapd.set_groups``), through the ldap-utils clients.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peers.dicom import free_port, track_log

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
LDAPMODIFY = "/usr/bin/ldapmodify"
LDAPSEARCH = "/usr/bin/ldapsearch"
OPENSSL = "/usr/bin/openssl"
SCHEMAS = Path("/etc/ldap/schema")
SUFFIX = "dc=pacsbridge,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root secret for tests"
SERVICE_DN = f"cn=pacsbridge,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service secret for tests"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
#: every group, by short name; groupOfNames needs one member, hence the placeholder
GROUP_NAMES = ("pacs-admins", "pacs-support", "radiology")
PLACEHOLDER = f"cn=placeholder,{SUFFIX}"
START_TIMEOUT = 15.0

CONFIG = """\
include {schemas}/core.schema
include {schemas}/cosine.schema
include {schemas}/inetorgperson.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
allow bind_anon_dn
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw "{root_password}"
directory {dir}/data
overlay memberof
access to attrs=userPassword by self =xw by anonymous auth by * none
access to * by * read
"""


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


@dataclass
class Slapd:
    """A running slapd: its URL, and the ldap-utils calls that change its entries."""

    url: str
    port: int
    ldaps_url: str
    ca_file: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def add_user(self, stem: str, password: str, groups: tuple[str, ...] = ()) -> str:
        """A new person ``<stem>-<random>`` with this password, member of ``groups``."""
        uid = f"{stem}-{uuid.uuid4().hex[:8]}"
        self.ldif(
            LDAPADD,
            f"dn: {user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {stem}\n"
            f"sn: {stem}\ndisplayName: {stem.title()} Test\nuserPassword: {password}\n",
        )
        self.set_groups(uid, groups, ())
        return uid

    def set_groups(self, uid: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
        """Add ``uid`` to the groups ``add`` and take it out of the groups ``remove``."""
        changes = [(name, "add") for name in add] + [(name, "delete") for name in remove]
        for name, change in changes:
            self.ldif(
                LDAPMODIFY,
                f"dn: {group_dn(name)}\nchangetype: modify\n{change}: member\n"
                f"member: {user_dn(uid)}\n",
            )

    def ldif(self, tool: str, text: str) -> None:
        argv = [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD]
        done = subprocess.run(argv, input=text.encode(), capture_output=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stderr.decode(errors='replace')}")

    def settled_log(self) -> str:
        """The log once slapd has written what it did so far: it logs from its worker
        threads after answering, so a test counting lines first waits for a marker search."""
        marker = f"settle-{uuid.uuid4().hex}"
        argv = [LDAPSEARCH, "-x", "-H", self.url, "-b", SUFFIX, f"(cn={marker})", "dn"]
        subprocess.run(argv, capture_output=True, timeout=30, check=True)
        deadline = time.monotonic() + 10
        while True:
            text = self.log_path.read_text(errors="replace")
            if (f"cn={marker}" in text and text.endswith("\n")) or time.monotonic() > deadline:
                return text
            time.sleep(0.02)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _base_entries() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: pacsbridge\n"
        "o: pacsbridge tests\n",
        f"dn: {PLACEHOLDER}\nobjectClass: organizationalRole\ncn: placeholder\n",
    ]
    for unit in ("people", "groups", "services"):
        entries.append(f"dn: ou={unit},{SUFFIX}\nobjectClass: organizationalUnit\nou: {unit}\n")
    entries.append(
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: pacsbridge\nsn: service\n"
        f"userPassword: {SERVICE_PASSWORD}\n"
    )
    for name in GROUP_NAMES:
        entries.append(
            f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\nmember: {PLACEHOLDER}\n"
        )
    return "\n".join(entries)


def _require_tools() -> None:
    for tool in (SLAPD, LDAPADD, LDAPMODIFY, LDAPSEARCH, OPENSSL):
        if not os.access(tool, os.X_OK):
            pytest.fail(
                f"{tool} is missing: the directory tests need Debian's slapd, ldap-utils and "
                "openssl "
                "(run scripts/install-test-deps)",
                pytrace=False,
            )


def _wait_listening(server: Slapd) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
            return
        time.sleep(0.05)
    server.stop()
    log = server.log_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"slapd did not start on {server.url}:\n{log}", pytrace=False)


def _make_certificates(folder: Path) -> None:
    """ca.pem (a CA of this test session only) and server.pem/.key for 127.0.0.1."""
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]
        + ["-subj", "/CN=pacsbridge test CA"],
        ["req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"]
        + ["-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"],
    ]
    for step in steps:
        done = subprocess.run([OPENSSL, *step], cwd=folder, capture_output=True, timeout=60)
        if done.returncode != 0:
            pytest.fail(f"openssl {step[0]}: {done.stderr.decode(errors='replace')}")


def start_slapd(folder: Path) -> Slapd:
    """slapd on a free port of 127.0.0.1 with the base entries loaded; fails loudly if not."""
    _require_tools()
    (folder / "data").mkdir(parents=True)
    _make_certificates(folder)
    conf = folder / "slapd.conf"
    conf.write_text(
        CONFIG.format(
            schemas=SCHEMAS,
            dir=folder,
            suffix=SUFFIX,
            root_dn=ROOT_DN,
            root_password=ROOT_PASSWORD,
        ),
        encoding="utf-8",
    )
    port = free_port()
    url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{free_port()}"
    log_path = folder / "slapd.log"
    with log_path.open("wb") as log:
        argv = [SLAPD, "-f", str(conf), "-h", f"{url}/ {ldaps_url}/", "-d", "stats"]
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = Slapd(url, port, ldaps_url, folder / "ca.pem", log_path, process)
    _wait_listening(server)
    server.ldif(LDAPADD, _base_entries())
    return server


@pytest.fixture(scope="session")
def _shared_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.log_path.parent / "data", ignore_errors=True)


@pytest.fixture
def slapd(_shared_slapd: Slapd, request: pytest.FixtureRequest) -> Slapd:
    """The session's slapd; what it logs during a failing test goes into the report."""
    track_log(request.node, "slapd", _shared_slapd.log_path)
    return _shared_slapd
