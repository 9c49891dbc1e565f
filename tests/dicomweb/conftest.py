"""DICOMweb against a live server: a retrieval moved from a real PACS, and an uploaded CD.

The client is ``dicomweb-client`` over real HTTP (uvicorn on a free port of 127.0.0.1): what a
clinician's viewer or the FSE web app would send. The retrieval runs the real gateway (C-FIND,
C-MOVE to our Storage SCP); the import runs the real upload and analysis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient

from conftest import FSE_KEY, LAUNCH_BODY, RIS_KEY, deep_merge
from imports.helpers import zip_folder
from pacsbridge.context import MovableClock
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from pacsbridge.retrievals import tasks
from pacsbridge.settings import Settings
from web.live import LiveServer, free_port

SOURCE = "ao17"


@dataclass
class Scope:
    """A server, what a token opens, and the files behind it."""

    server: LiveServer
    token: str
    paths: list[Path]
    document: dict[str, Any]

    @property
    def root(self) -> str:
        return f"{self.server.url}/dicomweb/t/{self.token}"

    def client(self) -> DICOMwebClient:
        return DICOMwebClient(url=self.root)

    def bearer_client(self) -> DICOMwebClient:
        return DICOMwebClient(
            url=f"{self.server.url}/dicomweb", headers={"Authorization": f"Bearer {self.token}"}
        )


@pytest.fixture
def start_server(
    make_settings: Callable[..., Settings], clock: MovableClock
) -> Iterator[Callable[..., LiveServer]]:
    """Live servers on the test's movable clock (links expire when the test says so)."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        base = {"web": {"host": "127.0.0.1", "port": free_port()}}
        server = LiveServer(make_settings(**deep_merge(base, overrides))).start(clock=clock)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def drain(server: LiveServer) -> None:
    huey = server.context.queue.huey
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


@pytest.fixture
def retrieve(
    start_server: Callable[..., LiveServer],
    pynetdicom_pacs: Any,
    our_scp_address: tuple[str, int],
    tmp_path: Path,
) -> Callable[..., Scope]:
    """``retrieve(prepare=None, **SampleStudy fields)``: a fresh study (its files changed by
    ``prepare(paths)`` first, when given) on the PACS, retrieved; its scope."""
    count = 0
    server: LiveServer | None = None

    def run(prepare: Callable[[list[Path]], None] | None = None, **fields: Any) -> Scope:
        nonlocal count, server
        count += 1
        if server is None:
            server = _gateway(start_server, pynetdicom_pacs, our_scp_address)
        fields.setdefault("patient", SamplePatient(patient_id=f"P{uuid.uuid4().hex[:10]}"))
        fields.setdefault("accession_number", f"A{uuid.uuid4().hex[:12].upper()}")
        study = SampleStudy(**fields)
        paths = write_loose(tmp_path / f"source-{count}", [study], junk=False)
        if prepare is not None:
            prepare(paths)
        pynetdicom_pacs.load(paths)
        auth = {"Authorization": f"Bearer {FSE_KEY}"}
        body = {"source": SOURCE, "accession_numbers": [study.accession_number]}
        answer = httpx.post(f"{server.url}/api/v1/retrievals", json=body, headers=auth)
        assert answer.status_code == 202, answer.text
        drain(server)
        document = httpx.get(f"{server.url}{answer.headers['location']}", headers=auth).json()
        assert document["state"] == "available", document
        token = document["dicomweb_url"].rsplit("/", 1)[1]
        return Scope(server, token, paths, document)

    return run


def _gateway(start: Callable[..., LiveServer], pacs: Any, scp: tuple[str, int]) -> LiveServer:
    host, port = scp
    peer = pacs.peer
    server = start(
        jobs={"backend": "sqlite", "retry_delay_seconds": 1},
        dicom={"ae_title": "PACSBRIDGE", "host": host, "port": port, "acse_timeout": 5},
        sources=[{"name": SOURCE, "ae_title": peer.ae_title, "host": peer.host, "port": peer.port}],
        fse={"quiet_period_seconds": 0.3, "move_timeout_seconds": 30},
    )
    tasks.on_start(server.context)
    return server


@pytest.fixture
def upload_media(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> Callable[[Path], Scope]:
    """``upload(folder)``: the folder zipped, uploaded and analysed; the preview's scope."""
    server = start_server()

    def run(folder: Path) -> Scope:
        ris = {"Authorization": f"Bearer {RIS_KEY}"}
        launched = httpx.post(f"{server.url}/api/v1/launch", json=LAUNCH_BODY, headers=ris)
        assert launched.status_code == 201, launched.text
        token = launched.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{server.url}/api/v1/imports", headers=auth)
        import_id = created.json()["id"]
        url = f"{server.url}/api/v1/imports/{import_id}/archive"
        answer = httpx.put(url, content=zip_folder(folder), headers=auth, timeout=60)
        assert answer.status_code == 200, answer.text
        document = httpx.get(f"{server.url}/api/v1/imports/{import_id}", headers=auth).json()
        assert document["state"] == "awaiting_confirmation", document
        preview = httpx.get(
            f"{server.url}/imports/{import_id}/viewer",
            cookies={"pacsbridge_token": token},
            follow_redirects=False,
        )
        assert preview.status_code == 303, preview.text
        viewer_token = preview.headers["location"].split("/viewer/", 1)[1].split("/")[0]
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
        return Scope(server, viewer_token, paths, document)

    return run
