"""The README's first command: `pacsbridge demo` serves a working import end to end over HTTP."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

from pacsbridge.demo.launcher import free_port


def _wait_for_banner(process: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    seen: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Sample USB" in line:
            text = "".join(seen)
            return {
                "link": re.search(r"Launch link.*?(http://\S+)", text)[1],
                "ris_key": re.search(r"RIS API key:\s+(\S+)", text)[1],
                "cd": re.search(r"Sample CD \(with DICOMDIR\):\s+(\S+)", text)[1],
            }
    raise AssertionError("no banner:\n" + "".join(seen))


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _until(client: httpx.Client, url: str, headers: dict[str, str], states: set[str]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        document = client.get(url, headers=headers).json()
        if document["state"] in states:
            return document
        time.sleep(0.2)
    raise AssertionError(f"still {document['state']}")


def test_demo_imports_the_sample_cd_into_its_pacs(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pacsbridge",
            "demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _wait_for_banner(process, time.monotonic() + 60)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            _until_up(client)
            page = client.get(banner["link"], follow_redirects=True)
            assert page.status_code == 200 and "pacsbridge_token" in page.headers["set-cookie"]

            launched = client.post(
                "/api/v1/launch",
                headers={"Authorization": f"Bearer {banner['ris_key']}"},
                json={
                    "patient": {
                        "id": "IOTELU1234",
                        "issuer": "AO17",
                        "family_name": "TEST",
                        "given_name": "TEST",
                        "birth_date": "1974-01-01",
                        "sex": "M",
                    },
                    "order": {"number": "ORD-9"},
                },
            )
            assert launched.status_code == 201, launched.text
            auth = {"Authorization": f"Bearer {launched.json()['token']}"}
            import_id = client.post("/api/v1/imports", headers=auth).json()["id"]
            url = f"/api/v1/imports/{import_id}"
            stored = client.put(f"{url}/archive", content=_zip(Path(banner["cd"])), headers=auth)
            assert stored.status_code == 200, stored.text

            analysed = _until(client, url, auth, {"awaiting_confirmation", "failed"})
            assert analysed["state"] == "awaiting_confirmation", analysed
            assert analysed["patients"][0]["verdict"] == "match"
            assert client.post(f"{url}/confirm", headers=auth).status_code == 202

            done = _until(client, url, auth, {"completed", "failed"})
            assert done["state"] == "completed", client.get(f"{url}/progress", headers=auth).text
    finally:
        process.terminate()
        process.wait(timeout=30)


def _until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the demo web server did not answer /healthz")
