"""Every failure ends, with a reason: poison archives through the real app end ``failed``.

Each once crashed the analysis and left the import "analysing" for ever, re-run every minute
(an empty zip, an entry name over 255 bytes), or unpacked far beyond its size (2,000 entries
each just under the per-entry ratio floor).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import bearer, launch, pacs_settings
from imports.helpers import upload, zip_entries, zip_folder
from pacsbridge.audit import AuditEvent
from pacsbridge.demo.samples import SampleStudy, write_loose
from pacsbridge.imports import analysis, maintenance, workspace
from pacsbridge.imports.pipeline import runner
from pacsbridge.media.archive import RATIO_FLOOR


def _empty() -> bytes:
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    return buffer.getvalue()


def _under_the_floor(count: int = 2000) -> bytes:
    """Entries of zeros each just under the size where the per-entry ratio check starts."""
    buffer = io.BytesIO()
    zeros = b"\0" * (RATIO_FLOOR - 1)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            archive.writestr(f"f{index:05d}.bin", zeros)
    return buffer.getvalue()


def _truncated(tmp_path: Path) -> bytes:
    write_loose(tmp_path / "t", [SampleStudy(series_count=1)], junk=False)
    whole = zip_folder(tmp_path / "t")
    return whole[: len(whole) // 2]


POISONS = {
    "empty-zip": lambda tmp: _empty(),
    "name-over-255-bytes": lambda tmp: zip_entries({"A" * 300 + ".dcm": b"x"}),
    "not-a-zip": lambda tmp: b"MZ this is an executable, not a zip" * 100,
    "truncated-zip": _truncated,
    "no-dicom-inside": lambda tmp: zip_entries({"README.TXT": b"hello", "AUTORUN.INF": b"x"}),
    "deeply-nested": lambda tmp: zip_entries({"/".join(["D"] * 60) + "/IMG.dcm": b"x"}),
    "2000-entries-under-the-ratio-floor": lambda tmp: _under_the_floor(),
}


@pytest.mark.parametrize("name", list(POISONS))
def test_poison_archive_ends_failed_with_an_italian_reason_within_the_bound(
    make_client, tmp_path, name
):  # noqa: ANN001
    client = make_client()
    ctx = client.app.state.context
    token = launch(client)

    document = upload(client, token, POISONS[name](tmp_path))
    for _ in range(3):  # the reaper's minutes: nothing is left to re-run
        assert maintenance.reap(ctx) == []

    assert document["state"] == "failed", document
    assert document["error"]["message"] and document["error"]["code"] != "internal_error"
    with ctx.sessions() as session:
        started, failed = (
            session.scalar(
                select(func.count()).where(
                    AuditEvent.import_id == document["id"], AuditEvent.kind == kind
                )
            )
            for kind in ("analysis.started", "analysis.failed")
        )
    assert (started, failed) == (1, 1)
    unpacked = workspace.files_dir(ctx.data_dir, document["id"])
    assert sum(p.stat().st_size for p in unpacked.rglob("*") if p.is_file()) < 10 * 1024**2


def test_a_crash_outside_our_errors_still_ends_failed_and_audited(make_client, tmp_path):  # noqa: ANN001
    """A file that is not a folder where the extraction needs one: an OSError, not ours."""
    client = make_client()
    ctx = client.app.state.context
    token = launch(client)
    (ctx.data_dir / "imports" / "1").mkdir(parents=True)
    (ctx.data_dir / "imports" / "1" / "files").write_bytes(b"in the way")
    write_loose(tmp_path / "usb", [SampleStudy(series_count=1)], junk=False)

    document = upload(client, token, zip_folder(tmp_path / "usb"))

    assert document["id"] == 1 and document["state"] == "failed"
    assert document["error"]["code"] == "analysis_failed"
    assert document["error"]["message"].startswith("Analisi fallita")


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing of ours runs after it, not even except."""


def test_an_analysis_killed_at_every_start_ends_failed_after_the_bound(
    make_client, tmp_path, monkeypatch
):  # noqa: ANN001
    """Once re-run every minute for ever (61 times): now ``jobs.analysis_attempts`` starts."""
    client = make_client(jobs={"backend": "sqlite", "analysis_attempts": 3})
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(series_count=1)], junk=False)
    import_id = upload(client, token, zip_folder(tmp_path / "usb"))["id"]

    def killed(root):  # noqa: ANN001, ANN202
        raise WorkerKilled

    monkeypatch.setattr(analysis.media, "inspect", killed)
    for _ in range(3):
        with pytest.raises(WorkerKilled):
            analysis.analyse(ctx, import_id)
        assert maintenance.reap(ctx) == [import_id]  # left "analysing": the reaper re-runs it
    analysis.analyse(ctx, import_id)

    document = client.get(f"/api/v1/imports/{import_id}", headers=bearer(token)).json()
    assert document["state"] == "failed"
    assert document["error"]["message"] == "Analisi fallita: interrotta 3 volte"
    assert maintenance.reap(ctx) == []


def test_an_unexpected_exception_in_a_phase_ends_failed_and_audited(
    make_client, pynetdicom_pacs, tmp_path, monkeypatch
):  # noqa: ANN001
    client = make_client(**pacs_settings(pynetdicom_pacs))
    ctx = client.app.state.context
    token = launch(client)
    write_loose(tmp_path / "usb", [SampleStudy(series_count=1)], junk=False)
    document = upload(client, token, zip_folder(tmp_path / "usb"))
    assert document["state"] == "awaiting_confirmation", document

    def broken(job):  # noqa: ANN001, ANN202
        raise KeyError("a bug, not a peer")

    monkeypatch.setattr(runner, "PHASES", (("verify", broken), *runner.PHASES[1:]))
    answer = client.post(f"/api/v1/imports/{document['id']}/confirm", headers=bearer(token))

    assert answer.status_code == 202
    progress = client.get(f"/api/v1/imports/{document['id']}/progress", headers=bearer(token))
    assert progress.json()["state"] == "failed"
    assert progress.json()["final"]["message"].startswith("Elaborazione fallita: Errore interno")
    assert maintenance.reap(ctx) == []
    with ctx.sessions() as session:
        kinds = set(
            session.scalars(select(AuditEvent.kind).where(AuditEvent.import_id == document["id"]))
        )
    assert {"phase.failed", "import.failed"} <= kinds
