"""Media → zip bytes, and driving an import through the API, for the import tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from conftest import bearer


def zip_folder(folder: Path) -> bytes:
    """The archive the browser would send: every file, stored (not deflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def zip_entries(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client: TestClient, token: str, body: bytes, part: int | None = None) -> dict[str, Any]:
    """Create an import and upload ``body`` whole or in parts; return the import document."""
    created = client.post("/api/v1/imports", headers=bearer(token))
    assert created.status_code == 201, created.text
    import_id = created.json()["id"]
    url = f"/api/v1/imports/{import_id}/archive"
    if part is None:
        answer = client.put(url, content=body, headers=bearer(token))
        assert answer.status_code == 200, answer.text
    else:
        for start in range(0, len(body), part):
            chunk = body[start : start + part]
            headers = {
                **bearer(token),
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(body)}",
            }
            answer = client.put(url, content=chunk, headers=headers)
            assert answer.status_code == 200, answer.text
    return client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()


def drain(client: TestClient) -> int:
    """Run every queued task now, as a worker would (delayed tasks go to the schedule)."""
    huey = client.app.state.context.queue.huey
    count = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        count += 1
    return count


def state_of(client: TestClient, token: str, import_id: int) -> str:
    answer = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["state"]


def progress_of(client: TestClient, token: str, import_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/imports/{import_id}/progress", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def phase_states(progress: dict[str, Any]) -> dict[str, str]:
    return {p["phase"]: p["state"] for p in progress["phases"]}
