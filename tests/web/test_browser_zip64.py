"""ZIP64 from the page's zip writer (static/js/zip-writer.js), without gigabytes of data.

The writer runs in Chromium on synthetic entries: sizes and CRCs given, no bytes read. It
yields each entry's data as the entry's own object, so the test writes only the headers at
their offsets into a sparse file and leaves the data as holes (zeros). Python's zipfile and
the server's own checks (media/archive.py) then read that file as the server would read the
uploaded archive.
"""

from __future__ import annotations

import base64
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from pacsbridge.media.archive import ArchiveLimits, check

from .test_browser_flow import open_launch

pytestmark = pytest.mark.browser

GiB = 1024**3

#: The writer's pieces for `entries` ([name, size, crc]): headers as [offset, base64], the
#: data of an entry as a hole of its size; and zipLength's prediction.
PIECES = """async ({ entries }) => {
  const w = await import("/static/js/zip-writer.js");
  const files = entries.map(([name, size]) => ({ name, size, blob: { hole: size } }));
  const zip = w.layout(files, new Date(2000, 0, 1, 0, 0, 0));
  async function* crcs() { for (const [, , crc] of entries) yield crc; }
  const b64 = (bytes) => {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const headers = [];
  let offset = 0;
  for await (const piece of w.zipPieces(zip, crcs())) {
    if (piece.hole !== undefined) {
      offset += piece.hole;
      continue;
    }
    const bytes = piece instanceof Blob ? new Uint8Array(await piece.arrayBuffer()) : piece;
    headers.push([offset, b64(bytes)]);
    offset += bytes.length;
  }
  return { headers, length: offset, predicted: w.zipLength(zip.entries) };
}"""


def _sparse_zip(page: Any, entries: list[list], target: Path) -> Path:
    result = page.evaluate(PIECES, {"entries": entries})
    assert result["predicted"] == result["length"]
    with target.open("wb") as out:
        for offset, data in result["headers"]:
            out.seek(offset)
            out.write(base64.b64decode(data))
        out.truncate(result["length"])
    assert target.stat().st_size == result["length"]
    return target


def _end_records(path: Path) -> tuple[bytes, bytes]:
    """The ZIP64 end of central directory record (56 bytes, or b"") and the classic one."""
    with path.open("rb") as fp:
        fp.seek(-98, 2)
        tail = fp.read()
    return tail[:56] if tail[:4] == b"PK\x06\x06" else b"", tail[-22:]


LIMITS = ArchiveLimits(max_total_bytes=100 * GiB, max_entries=100_000, max_ratio=100.0)


def test_entries_past_4_gib_get_zip64_sizes_and_offsets_that_zipfile_and_archive_checks_read(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    small = [b"\0" * 10, b"\0" * 20]
    entries = [
        ["cd/A", 10, zlib.crc32(small[0])],
        ["cd/BIG", 4 * GiB + 7, 0x12345678],  # size needs ZIP64: 8-byte sizes in the descriptor
        ["cd/EDGE", 0xFFFFFFFF, 0x0BADF00D],  # exactly 2^32-1: ZIP64 too (as client-zip)
        ["cd/àfter", 20, zlib.crc32(small[1])],  # its offset needs ZIP64
    ]
    path = _sparse_zip(page, entries, tmp_path / "big.zip")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["cd/A", "cd/BIG", "cd/EDGE", "cd/àfter"]
        assert [i.file_size for i in infos] == [e[1] for e in entries]
        assert [i.CRC for i in infos] == [e[2] for e in entries]
        assert all(i.flag_bits == 0x0808 and i.compress_type == 0 for i in infos)
        assert infos[3].header_offset > 8 * GiB
        assert archive.read("cd/A") == small[0]
        assert archive.read("cd/àfter") == small[1]  # its CRC checked past the 4 GiB mark
        assert len(check(archive, path, LIMITS)) == 4  # the server's structural checks
    zip64, end = _end_records(path)
    assert zip64 and struct.unpack_from("<QQ", zip64, 24) == (4, 4)
    cd_size, cd_offset = struct.unpack_from("<QQ", zip64, 40)
    assert cd_offset > 8 * GiB and cd_size < 1000
    assert struct.unpack_from("<HHLL", end, 8) == (4, 4, cd_size, 0xFFFFFFFF)


def test_more_than_65535_entries_get_a_zip64_end_record_with_the_real_count(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    count = 70_000
    entries = [[f"d/{i:05}", 0, 0] for i in range(count)]
    path = _sparse_zip(page, entries, tmp_path / "many.zip")
    zip64, end = _end_records(path)
    assert zip64, "no ZIP64 end of central directory record"
    assert struct.unpack_from("<QQ", zip64, 24) == (count, count)
    assert struct.unpack_from("<HH", end, 8) == (0xFFFF, 0xFFFF)
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == count
        assert archive.testzip() is None
        assert len(check(archive, path, LIMITS)) == count


def test_below_every_zip64_limit_the_zip_has_no_zip64_record(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    path = _sparse_zip(page, [["a", 0xFFFFFFFF - 200, 1], ["b", 5, 2]], tmp_path / "small.zip")
    zip64, _ = _end_records(path)
    assert zip64 == b""
    with zipfile.ZipFile(path) as archive:
        assert [i.file_size for i in archive.infolist()] == [0xFFFFFFFF - 200, 5]
