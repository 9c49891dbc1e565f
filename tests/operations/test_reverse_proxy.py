"""The shipped nginx configuration (deploy/nginx/pacsbridge.conf) in front of a real node.

nginx (Debian's ``nginx-light``) runs the file as shipped, with only what differs on a test
host rewritten: listen addresses and ports, the upstream servers, the certificate (a
self-signed one made here) and nginx's own pid, log and temporary paths. The client
connects from 127.0.0.2, so the address nginx sees differs from nginx's own (127.0.0.1, the
default of ``web.trusted_proxies``). docs/deployment.md, "Reverse proxy".
"""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import LAUNCH_BODY, RIS_KEY, bearer
from imports.helpers import zip_folder
from jobs.conftest import wait_for
from operations.cluster import Cluster, Node
from pacsbridge import runtime
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.settings import Settings
from peers.dicom import free_port

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
SHIPPED = Path(__file__).parents[2] / "deploy" / "nginx" / "pacsbridge.conf"
CLIENT = "127.0.0.2"
PART = 8 * 1024**2  # upload.part_bytes: what the browser sends


def _tool(path: str, package: str) -> str:
    if not Path(path).is_file():
        pytest.fail(f"{path} is missing: apt-get install {package} (scripts/install-test-deps)")
    return path


def _site(node: Node, folder: Path, http_port: int, https_port: int) -> str:
    """The shipped file with this host's addresses, ports and certificate."""
    text = SHIPPED.read_text(encoding="utf-8")
    text = re.sub(r"\n\s*server 10\.0\.0\.12:8000[^\n]*", "", text)
    text = re.sub(r"server 10\.0\.0\.11:8000", f"server 127.0.0.1:{node.web_port}", text)
    text = re.sub(r"\n\s*listen \[::\][^\n]*", "", text)
    text = text.replace("listen 80;", f"listen {CLIENT}:{http_port};")
    text = text.replace("listen 443 ssl", f"listen {CLIENT}:{https_port} ssl")
    return text.replace("/etc/ssl/pacsbridge/", f"{folder}/")


def _nginx_conf(folder: Path, site: str) -> Path:
    (folder / "site.conf").write_text(site, encoding="utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(
        f"user {getpass.getuser()};\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events {}\nhttp {\n  access_log off;\n"
        f"  client_body_temp_path {folder}/body;\n  proxy_temp_path {folder}/proxy;\n"
        f"  include {folder}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    return conf


@pytest.fixture
def proxied(tmp_path: Path, orthanc_pacs: Any) -> Iterator[dict[str, Any]]:
    """A node behind nginx: ``https``/``http`` base URLs, ``client``, ``ctx``."""
    folder = tmp_path / "nginx"
    folder.mkdir()
    subprocess.run(
        [_tool(OPENSSL, "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=pacsbridge.test", "-keyout", str(folder / "privkey.pem")]
        + ["-out", str(folder / "fullchain.pem")],
        check=True,
        capture_output=True,
    )
    peer = orthanc_pacs.peer
    cluster = Cluster(tmp_path, {"pacs": {"ae_title": peer.ae_title, "port": peer.port}})
    node = cluster.add("a")
    cluster.start(node)
    http_port, https_port = free_port(), free_port()
    conf = _nginx_conf(folder, _site(node, folder, http_port, https_port))
    nginx = subprocess.Popen(
        [_tool(NGINX, "nginx-light"), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=False)
    client = httpx.Client(transport=transport, timeout=60)
    https = f"https://{CLIENT}:{https_port}"

    def up() -> bool:
        assert nginx.poll() is None, (folder / "error.log").read_text()
        try:
            return client.get(f"{https}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "nginx in front of the node")
    built = runtime.build(Settings.load(node.config), upgrade=False)
    yield {
        "https": https,
        "http": f"http://{CLIENT}:{http_port}",
        "client": client,
        "ctx": built.context,
    }
    client.close()
    nginx.terminate()
    nginx.wait(timeout=10)
    built.close()
    cluster.close()


def test_through_the_shipped_nginx_config_an_archive_in_browser_sized_parts_is_analysed(
    proxied: dict[str, Any], tmp_path: Path
) -> None:
    """8 MiB parts: eight times nginx's default body limit, streamed to the node."""
    client, base = proxied["client"], proxied["https"]
    launched = client.post(f"{base}/api/v1/launch", json=LAUNCH_BODY, headers=bearer(RIS_KEY))
    assert launched.status_code == 201, launched.text
    auth = bearer(launched.json()["token"])
    patient = SamplePatient(name="TEST^TEST", patient_id="EXT-NGX", birth_date="19740101")
    study = SampleStudy(
        patient=patient, series_count=2, instances_per_series=40, rows=256, columns=256
    )
    write_loose(tmp_path / "usb", [study], junk=False)
    body = zip_folder(tmp_path / "usb")
    import_id = client.post(f"{base}/api/v1/imports", headers=auth).json()["id"]
    url = f"{base}/api/v1/imports/{import_id}"

    answers = []
    for start in range(0, len(body), PART):
        chunk = body[start : start + PART]
        part = {"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(body)}"}
        answers.append(client.put(f"{url}/archive", content=chunk, headers={**auth, **part}))

    assert len(body) > PART and [a.status_code for a in answers] == [200] * len(answers)
    wait_for(
        lambda: client.get(url, headers=auth).json()["state"] == "awaiting_confirmation",
        60,
        "the analysis",
    )


def test_the_shipped_nginx_config_gives_the_node_the_client_address_not_a_forged_one(
    proxied: dict[str, Any],
) -> None:
    client, base, ctx = proxied["client"], proxied["https"], proxied["ctx"]
    forged = {"X-Forwarded-For": "127.0.0.1", "Content-Type": "application/json"}

    answer = client.post(
        f"{base}/api/v1/staff/session",
        content=b'{"username": "nobody", "password": "wrong"}',
        headers=forged,
    )

    assert answer.status_code == 401, answer.text
    query = select(AuditEvent).where(AuditEvent.kind == "staff.sign_in_failed")
    with ctx.sessions() as session:
        [event] = session.scalars(query)
    assert event.details["address"] == CLIENT  # what nginx saw, not nginx's own, not forged
    assert client.get(f"{base}/metrics").status_code == 403  # scraped on the node's own port
    redirect = client.get(f"{proxied['http']}/healthz")
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")
