"""The zip the upload page builds from file slices (static/js/zip-writer.js), in Chromium.

The page leaves every CRC-32 to the server (media/crcfill.py): the zip it sends must read no
byte of the files, and once the server has extracted it the stored archive must be an ordinary
ZIP, client-zip's layout but for our 5-byte extra field per header.
"""

from __future__ import annotations

import base64
import io
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from pacsbridge.imports import workspace
from pacsbridge.imports.models import Import
from pacsbridge.media.archive import ArchiveLimits, extract

from .test_browser_flow import open_launch, send_folder

pytestmark = pytest.mark.browser

#: Builds the parts from byte `from` on (small parts, so files and headers straddle them) while
#: every way of reading a Blob counts its calls; then the whole zip from 0, and client-zip's
#: own zip of the same File objects; all as base64.
ZIP_BOTH = """async ({ from, partBytes }) => {
  const { zipParts, archiveSize } = await import("/static/js/upload.js");
  const { makeZip, predictLength } = await import("/static/vendor/client-zip-2.5.1/index.js");
  const files = [...document.getElementById("probe").files]
    .map((file) => ({ file, name: file.webkitRelativePath }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const saved = {};
  let reads = 0;
  for (const name of ["arrayBuffer", "stream", "text", "bytes"]) {
    saved[name] = Blob.prototype[name];
    Blob.prototype[name] = function (...args) { reads += 1; return saved[name].apply(this, args); };
  }
  const readAsArrayBuffer = FileReader.prototype.readAsArrayBuffer;
  FileReader.prototype.readAsArrayBuffer = function (blob) {
    reads += 1;
    return readAsArrayBuffer.call(this, blob);
  };
  const parts = [];
  const starts = [];
  try {
    for await (const part of zipParts(files, from, partBytes, () => {})) {
      starts.push(part.start);
      parts.push(part.blob);
    }
  } finally {
    for (const name in saved) Blob.prototype[name] = saved[name];
    FileReader.prototype.readAsArrayBuffer = readAsArrayBuffer;
  }
  const whole = [];
  for await (const part of zipParts(files, 0, partBytes, () => {})) whole.push(part.blob);
  const date = new Date(2000, 0, 1, 0, 0, 0);
  const inputs = files.map((f) => (
    { input: f.file, name: f.name, lastModified: date, size: f.file.size }));
  const reference = await new Response(makeZip(inputs)).blob();
  const b64 = async (blob) => {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  return {
    parts: await b64(new Blob(parts)), whole: await b64(new Blob(whole)),
    reference: await b64(reference), starts, reads,
    size: archiveSize(files), predicted: Number(predictLength(inputs)),
  };
}"""

MARK = struct.pack("<HHB", 0x5042, 1, 1)  # ID 0x5042, 1 byte, version 1 (media/crcfill.py)
LIMITS = ArchiveLimits(max_total_bytes=10**9, max_entries=1000, max_ratio=100.0)
#: Fields of an entry that must be client-zip's once the server has filled the CRCs.
SAME = ("filename", "flag_bits", "date_time", "compress_type", "file_size", "compress_size")
SAME += ("CRC", "create_system", "create_version", "extract_version", "external_attr")


def _media(root: Path) -> dict[str, bytes]:
    """Files of several sizes: empty, one byte, several in one part, larger than a part."""
    contents = {
        "cd/DICOMDIR": b"D" * 1234,
        "cd/EMPTY.TXT": b"",
        "cd/IMG/ONE": b"\x01",
        "cd/IMG/BIG": bytes(range(256)) * (17 * 1024 + 3),  # 4.25 MiB
        "cd/IMG/BIG.0": b"",  # empty between two large files
        "cd/IMG/BIG.1": bytes(range(255, -1, -1)) * (17 * 1024 + 5),
        "cd/IMG/àccénto": b"name in UTF-8",
        **{f"cd/IMG/MID{i}": bytes([i]) * (1536 * 1024 + i) for i in range(4)},
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


def _probe(page: Any, folder: Path) -> None:
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'file'; i.id = 'probe';"
        " i.webkitdirectory = true; document.body.append(i); }"
    )
    page.set_input_files("#probe", str(folder))


@pytest.mark.parametrize("start", [0, 1_000_003])
def test_parts_from_any_offset_read_no_file_byte_and_are_the_zip_past_that_offset(
    page: Any, live: Any, tmp_path: Path, start: int
) -> None:
    _media(tmp_path)
    open_launch(page, live())
    _probe(page, tmp_path / "cd")
    result = page.evaluate(ZIP_BOTH, {"from": start, "partBytes": 300_000})
    parts, whole = base64.b64decode(result["parts"]), base64.b64decode(result["whole"])
    assert result["reads"] == 0  # no Blob of the files was read to make the parts
    assert parts == whole[start:]  # resuming at `start` sends exactly the bytes after it
    assert result["starts"] == list(range(start, len(whole), 300_000))
    assert result["size"] == len(whole)  # the Content-Range total
    count = len(zipfile.ZipFile(io.BytesIO(whole)).infolist())
    assert len(whole) == result["predicted"] + 10 * count  # client-zip's + 5 bytes per header


def test_the_server_fills_every_crc_and_the_archive_is_client_zips_but_for_the_marks(
    page: Any, live: Any, tmp_path: Path
) -> None:
    contents = _media(tmp_path)
    open_launch(page, live())
    _probe(page, tmp_path / "cd")
    result = page.evaluate(ZIP_BOTH, {"from": 0, "partBytes": 300_000})
    path = tmp_path / "sent.zip"
    path.write_bytes(base64.b64decode(result["whole"]))
    with zipfile.ZipFile(path) as sent:
        assert all(i.CRC == 0 and i.extra.endswith(MARK) for i in sent.infolist())
        assert sent.testzip() == "cd/DICOMDIR"  # as sent, the first CRC is wrong
    extracted = extract(path, tmp_path / "out", LIMITS)
    assert sorted(extracted) == sorted(contents)
    reference = zipfile.ZipFile(io.BytesIO(base64.b64decode(result["reference"])))
    with zipfile.ZipFile(path) as filled:
        assert filled.testzip() is None  # every CRC-32 now right
        assert {n: filled.read(n) for n in filled.namelist()} == contents
        for ours, theirs in zip(filled.infolist(), reference.infolist(), strict=True):
            assert [getattr(ours, f) for f in SAME] == [getattr(theirs, f) for f in SAME]
            assert ours.extra == theirs.extra + MARK


def test_an_upload_from_the_page_is_stored_as_a_zip_whose_crcs_the_analysis_filled(
    page: Any, live: Any, tmp_path: Path
) -> None:
    """Files that are not DICOM: the analysis fails and keeps the archive (for support)."""
    server = live()
    contents = {
        "usb/NOTES": bytes(range(256)) * 40,  # straddles the 4096-byte parts
        "usb/EMPTY": b"",
        "usb/sub/RAW": b"\x07" * 9000,
    }
    for name, data in contents.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    open_launch(page, server)
    send_folder(page, tmp_path / "usb")
    expect(page.locator("#error")).to_contain_text("Nessun file DICOM trovato")
    with server.context.sessions() as session:
        (row,) = session.query(Import).all()
        assert row.state == "failed" and row.received_bytes == row.archive_size
    archive = workspace.archive_path(server.context.data_dir, row.id)
    with zipfile.ZipFile(archive) as stored:
        assert all(i.extra.endswith(MARK) for i in stored.infolist())
        assert stored.testzip() is None
        sent = {n: stored.read(n) for n in stored.namelist()}
    assert sent == {name.removeprefix("usb/"): data for name, data in contents.items() if data}
    check = subprocess.run(["unzip", "-tq", str(archive)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout  # Info-ZIP verifies every CRC too
