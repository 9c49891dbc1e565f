"""Patient data stays out of the server's log: only the audit log may hold it (docs/logging.md).

One real ``pacsbridge --log-level DEBUG serve`` process, warnings always shown, every byte it
writes to stdout and stderr kept. Through its HTTP API it runs a whole import (launch → upload
→ analysis → confirmation page and thumbnails → confirm → pipeline into a real Orthanc) and a
retrieval from the same Orthanc (C-FIND, C-MOVE into our Storage SCP, package). The patient is
unmistakable: a name, ids, a codice fiscale and a birth date that occur nowhere else, the birth
date written as an invalid DA (``1970-01-01``) so pydicom warns and quotes it, and media folders
and files named after the patient, as real CDs are. Media also carry an image whose pixels
cannot be decoded (its thumbnail fails) and an entry name too long for any file system.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import config as pydicom_config
from pydicom import dcmread

from conftest import FSE_KEY, RIS_KEY
from pacsbridge import logs
from pacsbridge.demo.samples import SamplePatient, SampleStudy, write_loose
from peers.dicom import free_port

FAMILY, GIVEN = "ZZPRIVACYNAME", "QQGIVEN"
DICOM_ID, RIS_ID, RETRIEVAL_ID = "ZZID12345", "ZZRIS54321", "ZZID67890"
FISCAL_CODE = "ZZPQGV70A01H501L"  # valid check character, born 1970-01-01
BAD_DA = "1970-01-01"  # a DA is YYYYMMDD: pydicom warns "Invalid value for VR DA"
FOLDER = f"{FAMILY} {GIVEN} {FISCAL_CODE}"
SECRETS = (FAMILY, GIVEN, DICOM_ID, RIS_ID, RETRIEVAL_ID, FISCAL_CODE, BAD_DA, "19700101")
PATIENT = SamplePatient(
    name=f"{FAMILY}^{GIVEN}",
    patient_id=DICOM_ID,
    birth_date=BAD_DA,
    sex="M",
    other_ids=(FISCAL_CODE,),
)
TERMINAL = {"completed", "failed", "cancelled", "awaiting_confirmation", "available", "partial"}
DEADLINE = 90.0


class Server:
    """``pacsbridge serve`` in a child process of its own; everything it prints goes to a file."""

    def __init__(self, folder: Path, config: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "pacsbridge.toml"
        self.config.write_text(config.replace("WEB_PORT", str(self.port)), encoding="utf-8")
        self.log_path = folder / "server.log"
        self.data_dir = folder / "data"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACSBRIDGE_")}
        env["PYTHONWARNINGS"] = "always"  # every warning, not only the first of each place
        argv = [sys.executable, "-m", "pacsbridge", "--log-level", "DEBUG", "serve"]
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [*argv, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.config.parent,
            )
        _until(lambda: self._answers() or self._died(), "the server to listen")
        assert not self._died(), self.log()
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _died(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def audit_text(self) -> str:
        """Every audit event (kind, message, details) of the run, as one text."""
        with sqlite3.connect(self.data_dir / "pacsbridge.db") as db:
            rows = db.execute("SELECT kind, message, details FROM audit_events").fetchall()
        return "\n".join(" ".join(str(v) for v in row) for row in rows)


def _until(ready: Any, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)  # polling another process's state; no event to wait on


def _config(tmp_path: Path, orthanc: Any, scp: tuple[str, int]) -> str:
    peer = orthanc.peer
    return f"""
[storage]
data_dir = "{tmp_path / "data"}"
[ris]
api_keys = ["{RIS_KEY}"]
[fse]
api_keys = ["{FSE_KEY}"]
quiet_period_seconds = 0.3
move_timeout_seconds = 30
[jobs]
backend = "sqlite"
retry_delay_seconds = 1
[web]
host = "127.0.0.1"
port = WEB_PORT
[pacs]
ae_title = "{peer.ae_title}"
host = "{peer.host}"
port = {peer.port}
[dicom]
ae_title = "PACSBRIDGE"
host = "{scp[0]}"
port = {scp[1]}
connection_timeout = 3
acse_timeout = 10
dimse_timeout = 30
[[sources]]
name = "ao17"
ae_title = "{peer.ae_title}"
host = "{peer.host}"
port = {peer.port}
"""


def _studies(accession: str) -> tuple[SampleStudy, SampleStudy]:
    """The study to import, and a one-image study whose pixel data cannot be decoded."""
    good = SampleStudy(patient=PATIENT, accession_number=accession, series_count=1)
    broken = SampleStudy(patient=PATIENT, description="RX", series_count=1, instances_per_series=1)
    return good, broken


def _media_zip(tmp_path: Path, good: SampleStudy, broken: SampleStudy) -> bytes:
    """The archive the browser sends: folders and files named after the patient, as on CDs."""
    with pydicom_config.disable_value_validation():
        paths = write_loose(tmp_path / "media-src", [good, broken], junk=False)
    _truncate_pixels(paths[-1])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, path in enumerate(paths, start=1):
            name = f"{FOLDER}/{FAMILY}_{FISCAL_CODE}/{FAMILY}_{DICOM_ID}_{index:03d}.dcm"
            archive.write(path, name)
    return buffer.getvalue()


def _poison_zip() -> bytes:
    """An entry name longer than any file system allows, made of the patient's name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{FOLDER}/{FAMILY}_{FISCAL_CODE}_{'X' * 300}.dcm", b"DICM" * 40)
    return buffer.getvalue()


def _truncate_pixels(path: Path) -> None:
    with pydicom_config.disable_value_validation():
        ds = dcmread(path)
        ds.PixelData = ds.PixelData[:10]
        ds.save_as(path, enforce_file_format=True)


def _launch(server: Server) -> dict[str, Any]:
    body = {
        "patient": {
            "id": RIS_ID,
            "issuer": "AO17",
            "family_name": FAMILY,
            "given_name": GIVEN,
            "birth_date": BAD_DA,
            "sex": "M",
            "fiscal_code": FISCAL_CODE,
        },
        "order": {"number": f"ORD-{uuid.uuid4().hex[:8]}", "accession_number": "ACC1"},
        "operator": {"id": "op1", "name": "Operatore Uno"},
    }
    answer = httpx.post(
        f"{server.url}/api/v1/launch", json=body, headers={"Authorization": f"Bearer {RIS_KEY}"}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


class Operator:
    """What the operator's browser does, over HTTP: API calls with the token, pages with cookies."""

    def __init__(self, server: Server, launch: dict[str, Any]) -> None:
        self.base = f"{server.url}/api/v1/imports"
        self.auth = {"Authorization": f"Bearer {launch['token']}"}
        self.pages = httpx.Client(follow_redirects=True, timeout=30)
        self.pages.get(launch["url"]).raise_for_status()  # the page session cookie
        self.server = server

    def upload(self, body: bytes) -> int:
        created = httpx.post(self.base, headers=self.auth)
        assert created.status_code == 201, created.text
        import_id = created.json()["id"]
        answer = httpx.put(f"{self.base}/{import_id}/archive", content=body, headers=self.auth)
        assert answer.status_code == 200, answer.text
        return import_id

    def document(self, import_id: int) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/{import_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, import_id: int, states: set[str]) -> str:
        _until(lambda: self.document(import_id)["state"] in states, f"import in {states}")
        return self.document(import_id)["state"]

    def try_poison(self, body: bytes) -> None:
        """Upload a poison archive; give its analysis a few seconds (it may never end)."""
        import_id = self.upload(body)
        states = {"failed", "awaiting_confirmation"}
        deadline = time.monotonic() + 15
        while self.document(import_id)["state"] not in states and time.monotonic() < deadline:
            time.sleep(0.2)  # polling another process; old code re-runs it every minute

    def look_at_confirmation(self, import_id: int) -> int:
        """The confirmation page and every thumbnail on it; how many thumbnails there were."""
        page = self.pages.get(f"{self.server.url}/imports/{import_id}/confirm")
        assert page.status_code == 200, page.text
        urls = set(re.findall(r"""(/imports/\d+/thumbnails/[^"'\s]+)""", page.text))
        for url in urls:
            assert self.pages.get(f"{self.server.url}{url}").status_code == 200
        return len(urls)

    def confirm(self, import_id: int, study_uid: str) -> None:
        # the invalid DA makes the media patient "different format": the second confirmation
        body = {"study_instance_uids": [study_uid], "identity_acknowledged": True}
        answer = httpx.post(f"{self.base}/{import_id}/confirm", json=body, headers=self.auth)
        assert answer.status_code == 202, answer.text


def _retrieve(server: Server, accession: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {FSE_KEY}"}
    body = {"source": "ao17", "accession_numbers": [accession], "patient_id": RETRIEVAL_ID}
    answer = httpx.post(f"{server.url}/api/v1/retrievals", json=body, headers=auth)
    assert answer.status_code == 202, answer.text
    url = f"{server.url}/api/v1/retrievals/{answer.json()['id']}"
    _until(lambda: httpx.get(url, headers=auth).json()["state"] in TERMINAL, "the retrieval")
    document = httpx.get(url, headers=auth).json()
    if document["state"] == "available":
        assert httpx.get(f"{url}/package", headers=auth).status_code == 200
    return document


def _import(server: Server, tmp_path: Path, orthanc: Any) -> dict[str, Any]:
    good, broken = _studies(f"A{uuid.uuid4().hex[:12].upper()}")
    operator = Operator(server, _launch(server))
    import_id = operator.upload(_media_zip(tmp_path, good, broken))
    assert operator.wait(import_id, TERMINAL) == "awaiting_confirmation"
    assert operator.look_at_confirmation(import_id) == 2
    operator.confirm(import_id, good.study_instance_uid)
    state = operator.wait(import_id, {"completed", "failed", "cancelled"})
    operator.try_poison(_poison_zip())
    uids = (*_uids(good), *_uids(broken))
    return {"state": state, "on_pacs": orthanc.instance_uids(good.study_instance_uid), "uids": uids}


def _load_for_retrieval(orthanc: Any, tmp_path: Path) -> SampleStudy:
    patient = SamplePatient(
        name=f"{FAMILY}^{GIVEN}", patient_id=RETRIEVAL_ID, birth_date=BAD_DA, sex="M"
    )
    study = SampleStudy(patient=patient, accession_number=f"A{uuid.uuid4().hex[:12].upper()}")
    with pydicom_config.disable_value_validation():
        orthanc.load(write_loose(tmp_path / "retrieval-src", [study], junk=False))
    return study


@pytest.fixture
def server(tmp_path: Path, orthanc_pacs: Any, our_scp_address: tuple[str, int]) -> Any:
    running = Server(tmp_path, _config(tmp_path, orthanc_pacs, our_scp_address)).start()
    yield running
    running.stop()


def test_server_log_holds_no_patient_data_after_an_import_and_a_retrieval(
    server: Server, orthanc_pacs: Any, tmp_path: Path
) -> None:
    imported = _import(server, tmp_path, orthanc_pacs)
    retrieval_study = _load_for_retrieval(orthanc_pacs, tmp_path)
    retrieved = _retrieve(server, retrieval_study.accession_number)
    server.stop()

    assert imported["state"] == "completed" and len(imported["on_pacs"]) == 3, imported
    assert retrieved["state"] == "available", retrieved
    log = server.log()
    assert "Uvicorn running" in log and " DEBUG " in log  # the whole log, at DEBUG, was kept
    secrets = (*SECRETS, *imported["uids"], *_uids(retrieval_study))
    leaked = {s for s in secrets if s.lower() in log.lower()}
    assert not leaked, (
        f"patient data in the server log: {sorted(leaked)}\n{_lines_with(log, secrets)}"
    )
    assert "UserWarning from pydicom" in log  # pydicom warned about the DA, without the value
    audit = server.audit_text()  # the one place allowed to hold patient identifiers
    held = (RIS_ID, RETRIEVAL_ID, imported["uids"][0], retrieval_study.study_instance_uid)
    assert all(value in audit for value in held), audit


def _uids(study: SampleStudy) -> tuple[str, ...]:
    """The study's own UID and each of its SOP Instance UIDs (pynetdicom dumps carry them)."""
    with pydicom_config.disable_value_validation():
        instances = [str(ds.SOPInstanceUID) for ds in study.datasets()]
    return (study.study_instance_uid, *instances)


def _lines_with(log: str, secrets: tuple[str, ...]) -> str:
    lines = [line for line in log.splitlines() if any(s.lower() in line.lower() for s in secrets)]
    return "\n".join(lines[:40])


# --- The filter on its own, in this process: each library route that carries values ----------


@pytest.fixture
def configured() -> Any:
    """``logs.configure`` into a buffer; the process's logging state restored afterwards."""
    root = logging.getLogger()
    names = ("pynetdicom", "sqlalchemy")
    saved = (list(root.handlers), root.level, [logging.getLogger(n).level for n in names])
    hooks = (warnings.showwarning, threading.excepthook)
    nd_handlers = list(logging.getLogger("pynetdicom").handlers)
    buffer = io.StringIO()
    logs.configure("DEBUG", stream=buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in zip(names, saved[2], strict=True):
        logging.getLogger(name).setLevel(level)
    warnings.showwarning, threading.excepthook = hooks
    logging.getLogger("pynetdicom").handlers[:] = nd_handlers


def test_a_traceback_about_a_media_file_keeps_its_frames_but_not_its_path(
    configured: io.StringIO, tmp_path: Path
) -> None:
    media = tmp_path / FOLDER / f"{FAMILY}_{DICOM_ID}.dcm"
    try:
        try:
            media.open("rb")
        except OSError as error:
            raise ValueError(f"cannot read {media}") from error
    except ValueError:
        logging.getLogger("huey").exception("Unhandled exception in task %s.", "t1")

    text = configured.getvalue()
    assert "Unhandled exception in task t1." in text and "media.open" in text  # frames kept
    assert "FileNotFoundError (ENOENT): text withheld" in text
    assert "ValueError: text withheld" in text and "direct cause" in text
    assert FAMILY not in text and DICOM_ID not in text


def test_pynetdicom_dumps_are_dropped_and_pydicom_records_lose_their_values(
    configured: io.StringIO,
) -> None:
    logging.getLogger("pynetdicom._handlers").debug("Affected SOP Instance UID : 1.2.3.%s", 9)
    logging.getLogger("pynetdicom.acse").info("Association Accepted")
    logging.getLogger("pynetdicom.service_class").error(ValueError(f"bad {FAMILY}"))
    logging.getLogger("pydicom").warning(f"Invalid value for VR DA: '{BAD_DA}'")
    logging.getLogger("pacsbridge.x").warning("import %s file #%d: %s", 7, 3, OSError(2, FAMILY))

    text = configured.getvalue()
    assert "1.2.3.9" not in text and "Association Accepted" in text
    assert "ValueError in" in text and "pydicom" in text and "text withheld" in text
    assert "import 7 file #3: FileNotFoundError (ENOENT)" in text
    assert FAMILY not in text and BAD_DA not in text


def test_a_warning_is_logged_as_its_category_and_module_only(configured: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = logs.show_warning  # pytest's own recorder stands in between
        warnings.warn(f"Invalid value for VR DA: '{BAD_DA}' in {FOLDER}", UserWarning, stacklevel=1)

    text = configured.getvalue()
    assert "UserWarning from test_log_privacy line" in text
    assert BAD_DA not in text and FAMILY not in text


def test_a_crashed_thread_is_logged_without_the_exception_message(
    configured: io.StringIO,
) -> None:
    def crash() -> None:
        raise KeyError(f"{FOLDER}/IMG0001.dcm")

    worker = threading.Thread(target=crash, name="analysis-7")
    worker.start()
    worker.join()

    text = configured.getvalue()
    assert "unhandled KeyError in thread analysis-7" in text and "KeyError: text withheld" in text
    assert FAMILY not in text


def test_a_handler_pynetdicom_attached_itself_gets_the_filter_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pynetdicom

    pynetdicom.debug_logger()  # its own StreamHandler on sys.stderr, outside our root handler
    root = logging.getLogger()
    saved = list(root.handlers), root.level, warnings.showwarning, threading.excepthook
    try:
        logs.configure("DEBUG", stream=io.StringIO())
        logging.getLogger("pynetdicom._handlers").debug("Patient's Name : %s", FAMILY)
        logging.getLogger("pynetdicom.acse").info("Association Accepted")
    finally:
        logging.getLogger("pynetdicom").handlers.clear()
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        root.handlers[:], root.level = saved[0], saved[1]
        warnings.showwarning, threading.excepthook = saved[2], saved[3]

    err = capsys.readouterr().err
    assert "Association Accepted" in err and FAMILY not in err
