"""The zip the upload page builds from file slices, checked in Chromium against client-zip."""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from .test_browser_flow import open_launch

pytestmark = pytest.mark.browser

#: Builds the parts from byte `from` on (small parts, so files and headers straddle them),
#: and client-zip's own zip of the same File objects; both as base64.
ZIP_BOTH = """async ({ from, partBytes }) => {
  const { zipParts } = await import("/static/js/upload.js");
  const { makeZip } = await import("/static/vendor/client-zip-2.5.1/index.js");
  const input = document.getElementById("probe");
  const files = [...input.files]
    .map((file) => ({ file, name: file.webkitRelativePath }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const parts = [];
  const starts = [];
  for await (const part of zipParts(files, from, partBytes, () => {})) {
    starts.push(part.start);
    parts.push(part.blob);
  }
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
  const { archiveSize } = await import("/static/js/upload.js");
  const { predictLength } = await import("/static/vendor/client-zip-2.5.1/index.js");
  return {
    ours: await b64(new Blob(parts)), reference: await b64(reference), starts,
    size: archiveSize(files), predicted: Number(predictLength(inputs)),
  };
}"""


def _media(root: Path) -> dict[str, bytes]:
    """Files of several sizes: empty, one byte, several read together, larger than one read."""
    contents = {
        "cd/DICOMDIR": b"D" * 1234,
        "cd/EMPTY.TXT": b"",
        "cd/IMG/ONE": b"\x01",
        "cd/IMG/BIG": bytes(range(256)) * (17 * 1024 + 3),  # 4.25 MiB: two reads
        "cd/IMG/BIG.0": b"",  # empty between two large files: read with nothing
        "cd/IMG/BIG.1": bytes(range(255, -1, -1)) * (17 * 1024 + 5),
        "cd/IMG/àccénto": b"name in UTF-8",
        **{f"cd/IMG/MID{i}": bytes([i]) * (1536 * 1024 + i) for i in range(4)},  # 4 MiB reads
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


@pytest.mark.parametrize("start", [0, 1_000_003])
def test_zip_writer_is_byte_identical_to_client_zip_from_any_offset_and_predicts_its_length(
    page: Any, live: Any, tmp_path: Path, start: int
) -> None:
    contents = _media(tmp_path)
    open_launch(page, live())
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'file'; i.id = 'probe';"
        " i.webkitdirectory = true; document.body.append(i); }"
    )
    page.set_input_files("#probe", str(tmp_path / "cd"))
    result = page.evaluate(ZIP_BOTH, {"from": start, "partBytes": 300_000})
    ours, reference = base64.b64decode(result["ours"]), base64.b64decode(result["reference"])
    assert ours == reference[start:]  # resuming at `start` sends exactly the bytes after it
    assert result["starts"] == list(range(start, len(reference), 300_000))
    assert result["size"] == result["predicted"] == len(reference)  # the Content-Range total
    with zipfile.ZipFile(io.BytesIO(reference)) as archive:
        assert archive.testzip() is None  # every CRC-32 right
        assert {n: archive.read(n) for n in archive.namelist()} == contents


#: CRC-32 of pseudo-random bytes from every alignment and length around the 16-byte blocks,
#: whole and in two pieces (the second going on from the first's CRC).
CRC_CASES = """async ({ seed, length }) => {
  const { crc32 } = await import("/static/js/zip-writer.js");
  const bytes = new Uint8Array(length + 8);
  let x = seed;
  for (let i = 0; i < bytes.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  const out = [];
  for (let start = 0; start < 8; start++) {
    for (const n of [0, 1, 3, 15, 16, 17, 33, 100, length]) {
      const part = bytes.subarray(start, start + n);
      const half = n >> 1;
      const split = crc32(part.subarray(half), crc32(part.subarray(0, half)));
      out.push([start, n, crc32(part), split]);
    }
  }
  return { bytes: Array.from(bytes), out };
}"""


def test_slice_by_16_crc32_equals_zlib_at_every_alignment_and_when_continued(
    page: Any, live: Any
) -> None:
    open_launch(page, live())
    result = page.evaluate(CRC_CASES, {"seed": 7, "length": 4099})
    data = bytes(result["bytes"])
    assert len(result["out"]) == 72
    for start, n, whole, split in result["out"]:
        assert whole == split == zlib.crc32(data[start : start + n]), (start, n)
