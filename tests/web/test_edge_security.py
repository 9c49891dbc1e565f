"""Attacks on the web edge, against real servers: body budgets, slow clients, headers, scope, ids.

Body and connection attacks go to ``pacsbridge serve`` run as a child process (the product's
own uvicorn configuration, web/server.py), over raw sockets, and the server's memory is read
from ``/proc/<pid>/status``. The rest runs against the in-process live server (tests/web/live.py)
or the product's uvicorn configuration in a thread.
"""

from __future__ import annotations

import copy
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter
from sqlalchemy import select as sql_select

from conftest import FSE_KEY, LAUNCH_BODY, RIS_KEY, bearer
from pacsbridge import runtime, server
from pacsbridge.audit import AuditEvent
from pacsbridge.context import MovableClock
from pacsbridge.settings import Settings

from .live import LiveServer, free_port

MiB = 1024 * 1024
TIMEOUTS = {"header_timeout_seconds": 2, "keep_alive_seconds": 2, "body_idle_seconds": 2}


# --- a served child process ------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


TOML = """
[storage]
data_dir = "{data}"
[ris]
api_keys = ["{ris}"]
[fse]
api_keys = ["{fse}"]
[jobs]
backend = "immediate"
[pacs]
host = "127.0.0.1"
port = 1
ae_title = "NOPACS"
[upload]
max_part_bytes = 65536
[web]
host = "127.0.0.1"
port = {port}
header_timeout_seconds = 2
keep_alive_seconds = 2
body_idle_seconds = 2
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``pacsbridge serve`` in a child process; shows its log when it dies while starting."""
    tmp_path = tmp_path_factory.mktemp("served")
    port = free_port()
    config = tmp_path / "pacsbridge.toml"
    data = tmp_path / "data"
    config.write_text(TOML.format(data=data, ris=RIS_KEY, fse=FSE_KEY, port=port))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "pacsbridge", "serve", "--config", str(config)]
        process = subprocess.Popen([*command, "--no-embedded-worker"], stdout=out, stderr=out)
    child = Served(process, port, log)
    _wait_healthy(child)
    yield child
    process.terminate()
    process.wait(timeout=15)


def _wait_healthy(child: Served, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            pytest.fail(f"pacsbridge serve exited:\n{child.log.read_text()}")
        try:
            if httpx.get(f"{child.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)  # polling a starting child, not waiting for readiness
    pytest.fail(f"pacsbridge serve did not answer:\n{child.log.read_text()}")


# --- raw HTTP -------------------------------------------------------------------------------


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, path: str, **headers: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answered(sock: socket.socket, within: float) -> bool:
    return bool(select.select([sock], [], [], within)[0])


def read_answer(sock: socket.socket, within: float = 5) -> tuple[int, bytes]:
    """Status and whatever of the answer arrives (headers and the body read so far)."""
    sock.settimeout(within)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    length = _content_length(head_part)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(data.split(b" ", 2)[1]), head_part + b"\r\n\r\n" + body


def _content_length(head_part: bytes) -> int | None:
    for line in head_part.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def seconds_until_closed(sock: socket.socket, limit: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes; ``trickle`` is sent every 0.3 s meanwhile."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if answered(sock, 0.3):
            try:
                if not sock.recv(65536):
                    return time.monotonic() - start
            except ConnectionResetError:
                return time.monotonic() - start
        elif trickle:
            try:
                sock.sendall(trickle)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
    raise AssertionError(f"connection still open after {limit} s")


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def token_for(url: str, body: dict[str, Any] | None = None) -> str:
    answer = httpx.post(f"{url}/api/v1/launch", json=body or LAUNCH_BODY, headers=bearer(RIS_KEY))
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def new_import(url: str, token: str) -> int:
    answer = httpx.post(f"{url}/api/v1/imports", headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


# --- §5 bodies: authentication first, size before parsing, stalls -------------------------


def test_unauthenticated_38_mb_launch_is_answered_before_its_body_and_costs_no_memory(
    served: Served,
) -> None:
    before = served.rss_bytes()
    sock = connect(served.port)
    size = 38 * MiB
    sock.sendall(
        head(
            "POST",
            "/api/v1/launch",
            **{"Content-Type": "application/json", "Content-Length": str(size)},
        )
    )
    sock.sendall(b'{"patient": {"id": "' + b"A" * 65536)
    assert answered(sock, 5), "the server waits for the 38 MB body instead of refusing"
    status, _ = read_answer(sock)
    assert status in (401, 413)
    sent = 65536 + 20
    while sent < size and send_quietly(sock, b"A" * MiB):
        sent += MiB
    sock.close()
    grown = served.rss_bytes() - before
    assert grown < 30 * MiB, f"server memory grew by {grown // MiB} MB"


def test_launch_checks_the_key_before_reading_any_body(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(
        head(
            "POST",
            "/api/v1/launch",
            **{"Content-Type": "application/json", "Content-Length": "2000"},
        )
    )
    assert answered(sock, 3), "the server waits for the body before checking the key"
    status, answer = read_answer(sock)
    assert status == 401 and b"api_key_invalid" in answer


def test_body_that_stops_arriving_answers_408_within_the_idle_bound(served: Served) -> None:
    sock = connect(served.port)
    headers = {"Authorization": f"Bearer {RIS_KEY}", "Content-Type": "application/json"}
    sock.sendall(head("POST", "/api/v1/launch", **headers, **{"Content-Length": "2000"}))
    sock.sendall(b'{"patient": ')
    start = time.monotonic()
    status, answer = read_answer(sock, within=8)
    assert status == 408 and b"request_timeout" in answer
    assert time.monotonic() - start < 2 + 2


def test_upload_part_trickling_within_the_idle_bound_is_read_until_it_stops_then_408(
    served: Served,
) -> None:
    """Pauses shorter than the bound are no stall however long the part takes (3.6 s here,
    the bound being 2 s); the bound counts from the last bytes, and those bytes are kept."""
    token = token_for(served.url)
    import_id = new_import(served.url, token)
    path = f"/api/v1/imports/{import_id}/archive"
    total = 60_000
    sock = connect(served.port)
    headers = {"Content-Length": str(total), "Content-Range": f"bytes 0-{total - 1}/{total}"}
    sock.sendall(head("PUT", path, Authorization=f"Bearer {token}", **headers))
    for _ in range(4):
        sock.sendall(b"P" * 1000)
        assert not answered(sock, 1.2), "answered while the part still arrived within the bound"
    quiet_since = time.monotonic() - 1.2
    status, answer = read_answer(sock, within=8)
    assert status == 408 and b"request_timeout" in answer
    assert time.monotonic() - quiet_since < 2 + 1.5
    held = httpx.get(f"{served.url}{path}", headers=bearer(token)).json()
    assert held["received_bytes"] == 4000  # the resume point: nothing received is lost


@pytest.mark.parametrize(
    ("path", "key", "limit"),
    [("/api/v1/launch", RIS_KEY, 16 * 1024), ("/api/v1/retrievals", FSE_KEY, 128 * 1024)],
)
def test_chunked_body_without_length_is_counted_and_refused_413(
    served: Served, path: str, key: str, limit: int
) -> None:
    sock = connect(served.port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sock.sendall(head("POST", path, **headers, **{"Transfer-Encoding": "chunked"}))
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"
    sent = 0
    while sent < 8 * MiB and not answered(sock, 0) and send_quietly(sock, chunk):
        sent += 0x2000
    assert sent < 8 * MiB, "no answer while 8 MB streamed in"
    status, answer = read_answer(sock)
    assert status == 413 and b"request_too_large" in answer


def test_confirm_with_500000_uids_is_refused_413_with_a_small_answer(served: Served) -> None:
    token = token_for(served.url)
    import_id = new_import(served.url, token)
    uids = [f"1.2.826.0.1.3680043.8.498.{n}" for n in range(500_000)]
    answer = httpx.post(
        f"{served.url}/api/v1/imports/{import_id}/confirm",
        json={"study_instance_uids": uids},
        headers=bearer(token),
        timeout=60,
    )
    assert answer.status_code == 413
    assert len(answer.content) < 4096


def test_confirm_list_over_its_maximum_is_422_naming_the_field(served: Served) -> None:
    token = token_for(served.url)
    import_id = new_import(served.url, token)
    answer = httpx.post(
        f"{served.url}/api/v1/imports/{import_id}/confirm",
        json={"study_instance_uids": ["1.2.3"] * 1001},
        headers=bearer(token),
    )
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["error"]["fields"]] == ["study_instance_uids"]
    assert len(answer.content) < 4096


@pytest.mark.parametrize("chunked", [False, True])
def test_upload_part_over_its_maximum_is_413_and_audited(served: Served, chunked: bool) -> None:
    token = token_for(served.url)
    import_id = new_import(served.url, token)
    path = f"/api/v1/imports/{import_id}/archive"
    sock = connect(served.port)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(4 * MiB)}
    sock.sendall(head("PUT", path, Authorization=f"Bearer {token}", **framing))
    piece = b"4000\r\n" + b"P" * 0x4000 + b"\r\n" if chunked else b"P" * 0x4000
    sent = 0
    while sent < 4 * MiB and not answered(sock, 0) and send_quietly(sock, piece):
        sent += 0x4000
    status, answer = read_answer(sock)
    assert status == 413 and b"request_too_large" in answer
    events = httpx.get(f"{served.url}{path[: -len('/archive')]}/events", headers=bearer(token))
    refused = [e for e in events.json()["events"] if e["kind"] == "upload.refused"]
    assert refused and refused[0]["code"] == "request_too_large"


# --- §5 connections: header deadline, idle keep-alive, header size ------------------------


def test_headers_that_never_end_are_closed_within_the_header_bound(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    took = seconds_until_closed(sock, limit=10, trickle=b"X-Slow: 1\r\n")
    assert took < 2 + 1.5


def test_silent_connection_is_closed_within_the_header_bound(served: Served) -> None:
    assert seconds_until_closed(connect(served.port), limit=10) < 2 + 1.5


def test_idle_keep_alive_connection_is_closed(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(head("GET", "/healthz"))
    assert read_answer(sock)[0] == 200
    assert seconds_until_closed(sock, limit=10) < 2 + 1.5


def test_headers_over_16_kib_are_refused_and_closed(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 70_000)
    status, _ = read_answer(sock)
    assert status in (400, 431)
    assert seconds_until_closed(sock, limit=5) < 5


def test_refused_launches_are_audited_without_their_values(served: Served) -> None:
    httpx.post(f"{served.url}/api/v1/launch", json=LAUNCH_BODY)
    bad = copy.deepcopy(LAUNCH_BODY)
    bad["patient"]["family_name"] = "ROSSI^MARIO"
    httpx.post(f"{served.url}/api/v1/launch", json=bad, headers=bearer(RIS_KEY))
    too_big = {**LAUNCH_BODY, "padding": "x" * 40_000}
    assert (
        httpx.post(f"{served.url}/api/v1/launch", json=too_big, headers=bearer(RIS_KEY)).status_code
        == 413
    )
    settings = Settings.load(served.log.parent / "pacsbridge.toml")
    rt = runtime.build(settings)
    try:
        with rt.context.sessions() as session:
            rows = session.scalars(
                sql_select(AuditEvent).where(AuditEvent.kind == "launch.refused")
            ).all()
            found = [(r.code, r.details.get("fields"), repr(r.details)) for r in rows]
    finally:
        rt.close()
    assert [(code, fields) for code, fields, _ in found[-3:]] == [
        ("api_key_invalid", []),
        ("invalid_input", ["patient.family_name"]),
        ("request_too_large", []),
    ]
    assert all("ROSSI" not in text and "IOTELU1234" not in text for _, _, text in found)


# --- §8 headers on every answer ---------------------------------------------------------------


SECURITY = {
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


@pytest.fixture
def product_server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., str]]:
    """The product's uvicorn configuration (server.uvicorn_config) in a thread; extra routers."""
    started: list[tuple[uvicorn.Server, threading.Thread, runtime.Runtime]] = []

    def start(*routers: APIRouter) -> str:
        settings = make_settings(web={"host": "127.0.0.1", "port": free_port()})
        rt = runtime.build(settings)
        app = rt.app()
        for router in routers:
            app.include_router(router)
        config = server.uvicorn_config(app, settings, log_level="warning", lifespan="off")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        while not uv.started:
            time.sleep(0.02)  # polling a starting thread, not waiting for readiness
        started.append((uv, thread, rt))
        return settings.public_url

    yield start
    for uv, thread, rt in started:
        uv.should_exit = True
        thread.join(timeout=10)
        rt.close()


def test_every_answer_carries_the_security_headers_even_a_500(
    product_server: Callable[..., str],
) -> None:
    boom = APIRouter()

    @boom.get("/api/v1/boom")
    def explode() -> None:
        raise RuntimeError("boom")

    @boom.get("/boom-page")
    def explode_page() -> None:
        raise RuntimeError("boom")

    url = product_server(boom)
    cases = {
        "/healthz": 200,
        "/api/v1/imports": 401,
        "/api/v1/openapi.json": 200,
        "/imports": 401,
        "/imports/start?token=nope": 401,
        "/nowhere": 404,
        "/api/v1/boom": 500,
        "/boom-page": 500,
        "/static/css/pacsbridge.css": 200,
    }
    for path, status in cases.items():
        answer = httpx.get(f"{url}{path}")
        assert answer.status_code == status, path
        for name, value in SECURITY.items():
            assert value in answer.headers.get(name, ""), (path, name)
        if not path.startswith("/static/"):
            assert answer.headers["cache-control"] == "no-store", path
    assert "Traceback" not in httpx.get(f"{url}/boom-page").text


def test_pages_and_json_with_patient_data_are_no_store(live: Callable[..., LiveServer]) -> None:
    server_ = live()
    token = token_for(server_.url)
    import_id = new_import(server_.url, token)
    with httpx.Client(base_url=server_.url) as client:
        client.get(f"/imports/start?token={token}")
        for path in ("/imports", f"/imports/{import_id}/confirm"):
            answer = client.get(path)
            assert answer.status_code == 200 and "IOTELU1234" in answer.text
            assert answer.headers["cache-control"] == "no-store"
        document = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token))
        assert document.headers["cache-control"] == "no-store"


# --- §8 scope: patient id, issuer and order --------------------------------------------------


def test_same_patient_id_and_order_under_another_issuer_cannot_read_the_import(
    live: Callable[..., LiveServer],
) -> None:
    url = live().url
    mine = token_for(url)
    import_id = new_import(url, mine)
    other = copy.deepcopy(LAUNCH_BODY)
    other["patient"]["issuer"] = "ALTRO_OSPEDALE"
    theirs = token_for(url, other)
    assert httpx.get(f"{url}/api/v1/imports/{import_id}", headers=bearer(mine)).status_code == 200
    for method, suffix in [
        ("GET", ""),
        ("GET", "/events"),
        ("GET", "/archive"),
        ("POST", "/cancel"),
    ]:
        answer = httpx.request(
            method, f"{url}/api/v1/imports/{import_id}{suffix}", headers=bearer(theirs)
        )
        assert answer.status_code == 404, suffix
    assert httpx.get(f"{url}/api/v1/imports", headers=bearer(theirs)).json()["imports"] == []


# --- §8 ids out of range ----------------------------------------------------------------------


HUGE = ["99999999999999999999", str(2**63), str(-(2**63) - 1)]


def _int_routes(routes: list[Any]) -> list[tuple[str, str]]:
    """(method, path) of every route with an integer path parameter, included routers too."""
    found = []
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's lazily included router
            found.extend(_int_routes(route.original_router.routes))
            continue
        params = getattr(getattr(route, "dependant", None), "path_params", [])
        if any(p.field_info.annotation is int for p in params):
            found.extend((method, route.path) for method in sorted(route.methods))
    return found


def test_every_route_answers_404_for_ids_beyond_a_database_integer(
    live: Callable[..., LiveServer],
) -> None:
    server_ = live()
    assert server_.rt is not None
    routes = _int_routes(server_.rt.app().routes)
    assert {
        "/api/v1/imports/{import_id}",
        "/api/v1/retrievals/{retrieval_id}",
        "/imports/{import_id}/monitor",
    } <= {p for _, p in routes}
    token = token_for(server_.url)
    cookies = httpx.get(f"{server_.url}/imports/start?token={token}").cookies
    for method, template in routes:
        for value in HUGE:
            path = re.sub(r"\{\w*_id\}", value, template)  # every integer id of the route
            path = path.replace("{series_uid}", "1.2.3").replace("{", "").replace("}", "")
            key = FSE_KEY if "/retrievals" in path else token
            headers = bearer(key) if path.startswith("/api/") else {}
            answer = httpx.request(method, f"{server_.url}{path}", headers=headers, cookies=cookies)
            assert answer.status_code == 404, (method, path, answer.text[:200])


# --- state changes need this launch's live token ---------------------------------


@pytest.mark.parametrize("action", ["confirm", "cancel", "recheck"])
def test_state_changes_refuse_another_launchs_an_expired_or_no_token(
    make_settings: Callable[..., Settings], action: str
) -> None:
    clock = MovableClock()
    settings = make_settings(web={"host": "127.0.0.1", "port": free_port()})
    server_ = LiveServer(settings).start(clock=clock)
    try:
        url = server_.url
        mine = token_for(url)
        import_id = new_import(url, mine)
        other = copy.deepcopy(LAUNCH_BODY)
        other["patient"]["id"] = "ALTRO1"
        theirs = token_for(url, other)
        target = f"{url}/api/v1/imports/{import_id}/{action}"
        assert httpx.post(target, headers=bearer(theirs)).status_code == 404
        assert httpx.post(target).status_code == 401
        clock.advance(hours=8, seconds=1)
        expired = httpx.post(target, headers=bearer(mine))
        assert expired.status_code == 401
        assert expired.json()["error"]["code"] == "token_not_found_or_expired"
        with server_.context.sessions() as session:
            kinds = session.scalars(
                sql_select(AuditEvent.kind).where(AuditEvent.import_id == import_id)
            ).all()
        assert kinds == ["import.created"]
    finally:
        server_.stop()
