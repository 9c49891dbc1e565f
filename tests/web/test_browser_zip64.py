"""ZIP64 from the page's zip writer (static/js/zip-writer.js), without gigabytes of data.

The writer runs in Chromium on synthetic entries: sizes given, no bytes read, every CRC-32
left to the server. It yields each entry's data as the entry's own object, so the test writes
only the headers at their offsets into a sparse file and leaves the data as holes (zeros).
The server's own checks and CRC filling (media/archive.py, media/crcfill.py) then work on that
file as on an uploaded archive, and Python's zipfile verifies every CRC.
"""

from __future__ import annotations

import base64
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from pacsbridge.media import crcfill
from pacsbridge.media.archive import ArchiveLimits, check, extract

from .test_browser_flow import open_launch

pytestmark = pytest.mark.browser

GiB = 1024**3

#: The writer's pieces for `entries` ([name, size]): headers as [offset, base64], the data of
#: an entry as a hole of its size; and zipLength's prediction.
PIECES = """async ({ entries }) => {
  const w = await import("/static/js/zip-writer.js");
  const files = entries.map(([name, size]) => ({ name, size, blob: { hole: size } }));
  const zip = w.layout(files, new Date(2000, 0, 1, 0, 0, 0));
  const b64 = (bytes) => {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const headers = [];
  let offset = 0;
  for await (const piece of w.zipPieces(zip)) {
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
MARK = struct.pack("<HHB", 0x5042, 1, 1)  # "CRC-32 to be filled by the receiver", version 1


def _zeros_crc(size: int) -> int:
    """CRC-32 of ``size`` zero bytes (a hole), 16 MiB at a time."""
    crc, block = 0, bytes(16 * 1024**2)
    for start in range(0, size, len(block)):
        crc = zlib.crc32(block[: min(len(block), size - start)], crc)
    return crc


def _descriptor_crcs(path: Path, ends: list[int]) -> list[int]:
    """The CRC-32 of each data descriptor (after its signature), where each entry's data end."""
    with path.open("rb") as fp:
        found = []
        for end in ends:
            fp.seek(end)
            signature, crc = struct.unpack("<4sL", fp.read(8))
            assert signature == b"PK\x07\x08"
            found.append(crc)
    return found


def test_entries_past_4_gib_get_zip64_fields_and_the_server_fills_every_crc_past_4_gib(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    entries = [
        ["cd/A", 10],
        ["cd/BIG", 4 * GiB + 7],  # size needs ZIP64: 8-byte sizes in the descriptor
        ["cd/EDGE", 0xFFFFFFFF],  # exactly 2^32-1: ZIP64 too (as client-zip)
        ["cd/àfter", 20],  # its offset needs ZIP64
    ]
    path = _sparse_zip(page, entries, tmp_path / "big.zip")
    crcs = [_zeros_crc(size) for _, size in entries]
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["cd/A", "cd/BIG", "cd/EDGE", "cd/àfter"]
        assert [i.file_size for i in infos] == [e[1] for e in entries]
        assert [i.CRC for i in infos] == [0, 0, 0, 0]
        assert all(i.flag_bits == 0x0808 and i.compress_type == 0 for i in infos)
        assert all(i.extra.endswith(MARK) and crcfill.marked(i) for i in infos)
        assert infos[3].header_offset > 8 * GiB
        checked = check(archive, path, LIMITS)  # the server's checks, before any byte
        computed = [(e.info, e.data_end, crc) for e, crc in zip(checked, crcs, strict=True)]
        crcfill.fill(path, archive, computed)  # what extraction does with the CRCs it computed
    with zipfile.ZipFile(path) as archive:
        assert [i.CRC for i in archive.infolist()] == crcs  # each the CRC of its bytes
        assert archive.read("cd/A") == bytes(10)  # zipfile verifies the CRC as it reads
        assert archive.read("cd/àfter") == bytes(20)  # ... past the 8 GiB mark
    assert _descriptor_crcs(path, [e.data_end for e in checked]) == crcs
    zip64, end = _end_records(path)
    assert zip64 and struct.unpack_from("<QQ", zip64, 24) == (4, 4)
    cd_size, cd_offset = struct.unpack_from("<QQ", zip64, 40)
    assert cd_offset > 8 * GiB and cd_size < 1000
    assert struct.unpack_from("<HHLL", end, 8) == (4, 4, cd_size, 0xFFFFFFFF)


def test_more_than_65535_entries_get_a_zip64_end_record_and_extract_with_every_crc_filled(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    count = 70_000
    entries = [[f"d/{i:05}", 1] for i in range(count)]  # one zero byte each: CRC 0xD202EF8D
    path = _sparse_zip(page, entries, tmp_path / "many.zip")
    zip64, end = _end_records(path)
    assert zip64, "no ZIP64 end of central directory record"
    assert struct.unpack_from("<QQ", zip64, 24) == (count, count)
    assert struct.unpack_from("<HH", end, 8) == (0xFFFF, 0xFFFF)
    written = extract(path, tmp_path / "out", LIMITS)
    assert len(written) == count and (tmp_path / "out" / "d" / "69999").read_bytes() == b"\0"
    with zipfile.ZipFile(path) as archive:
        assert {i.CRC for i in archive.infolist()} == {zlib.crc32(b"\0")}
        assert archive.testzip() is None


def test_below_every_zip64_limit_the_zip_has_no_zip64_record(
    page: Any, live: Any, tmp_path: Path
) -> None:
    open_launch(page, live())
    path = _sparse_zip(page, [["a", 0xFFFFFFFF - 200], ["b", 5]], tmp_path / "small.zip")
    zip64, _ = _end_records(path)
    assert zip64 == b""
    with zipfile.ZipFile(path) as archive:
        assert [i.file_size for i in archive.infolist()] == [0xFFFFFFFF - 200, 5]
