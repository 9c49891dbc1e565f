"""media.archive.extract on the upload page's archives: CRC-32s left to the receiver (crcfill)."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from pacsbridge.errors import BrokenArchive, UnsafeArchive
from pacsbridge.media.archive import ArchiveLimits, extract

from .helpers import CRC_MARK, assemble, central_header, local_header, marked_zip

LIMITS = ArchiveLimits(max_total_bytes=100_000_000, max_entries=100, max_ratio=100.0)
ENTRIES = {"DICOMDIR": b"dir" * 100, "A/EMPTY": b"", "A/IMG": bytes(range(256)) * 1000}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _descriptor_crcs(data: bytes) -> list[int]:
    found, at = [], data.find(b"PK\x07\x08")
    while at >= 0:
        found.append(struct.unpack_from("<L", data, at + 4)[0])
        at = data.find(b"PK\x07\x08", at + 16)
    return found


def test_marked_entries_extract_and_leave_an_ordinary_zip_with_every_crc_right(tmp_path):
    archive = _write(tmp_path / "a.zip", marked_zip(ENTRIES))
    with zipfile.ZipFile(archive) as sent:
        assert sent.testzip() == "DICOMDIR"  # as sent: CRC-32 0, wrong

    written = extract(archive, tmp_path / "out", LIMITS)

    assert written == list(ENTRIES)
    assert {n: (tmp_path / "out" / n).read_bytes() for n in ENTRIES} == ENTRIES
    crcs = [zlib.crc32(data) for data in ENTRIES.values()]
    with zipfile.ZipFile(archive) as filled:
        assert filled.testzip() is None
        assert [i.CRC for i in filled.infolist()] == crcs
        assert {n: filled.read(n) for n in filled.namelist()} == ENTRIES
    assert _descriptor_crcs(archive.read_bytes()) == crcs  # for readers of the local headers


def test_extracting_again_writes_the_same_archive(tmp_path):
    archive = _write(tmp_path / "a.zip", marked_zip(ENTRIES))
    extract(archive, tmp_path / "one", LIMITS)
    once = archive.read_bytes()

    extract(archive, tmp_path / "two", LIMITS)

    assert archive.read_bytes() == once


def test_a_marked_entry_changed_after_filling_fails_zipfiles_check(tmp_path):
    archive = _write(tmp_path / "a.zip", marked_zip(ENTRIES))
    extract(archive, tmp_path / "out", LIMITS)
    data = bytearray(archive.read_bytes())
    data[data.find(b"dirdir") + 1] ^= 0xFF
    archive.write_bytes(bytes(data))

    with zipfile.ZipFile(archive) as changed:
        assert changed.testzip() == "DICOMDIR"
        with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
            changed.read("DICOMDIR")


@pytest.mark.parametrize("mark", [b"", struct.pack("<HHB", 0x5042, 1, 2)], ids=["none", "v2"])
def test_an_unmarked_entry_with_a_wrong_crc_is_refused_as_broken(tmp_path, mark):
    archive = _write(tmp_path / "a.zip", marked_zip(ENTRIES, mark=mark))
    before = archive.read_bytes()

    with pytest.raises(BrokenArchive, match="CRC"):
        extract(archive, tmp_path / "out", LIMITS)

    assert list((tmp_path / "out").rglob("*")) == []
    assert archive.read_bytes() == before  # nothing filled in a refused archive


def test_an_unmarked_bad_crc_beside_marked_entries_is_refused_and_nothing_is_filled(tmp_path):
    """An ordinary entry (zipfile's own CRC) after the marked ones still has its CRC compared."""
    data = b"B" * 100
    marked = marked_zip({"A": b"a" * 100})
    body = marked[: marked.find(b"PK\x01\x02")]
    plain = local_header(b"B", data)
    wrong = bytearray(central_header(b"B", data, len(body)))
    struct.pack_into("<L", wrong, 16, 1)  # CRC-32 1
    marked_central = marked[len(body) : marked.find(b"PK\x05\x06")]
    archive = _write(
        tmp_path / "a.zip", assemble(body + plain + data, [marked_central, bytes(wrong)])
    )
    before = archive.read_bytes()

    with pytest.raises(BrokenArchive, match="CRC"):
        extract(archive, tmp_path / "out", LIMITS)

    assert list((tmp_path / "out").rglob("*")) == []
    assert archive.read_bytes() == before


def _patch_central(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, data.find(b"PK\x01\x02") + at, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("at", "fmt", "value"),
    [(10, "<H", 8), (20, "<L", 299), (24, "<L", 301)],
    ids=["deflated", "compressed-size-differs", "file-size-differs"],
)
def test_a_marked_entry_not_stored_as_declared_is_refused_before_writing(tmp_path, at, fmt, value):
    data = _patch_central(marked_zip({"DICOMDIR": b"d" * 300}), at, fmt, value)
    archive = _write(tmp_path / "a.zip", data)

    with pytest.raises(BrokenArchive, match="not stored as declared"):
        extract(archive, tmp_path / "out", LIMITS)

    assert not (tmp_path / "out").exists()


def test_a_marked_entry_declaring_fewer_bytes_than_it_holds_is_refused_before_writing(tmp_path):
    """The declared size ends before the data: no descriptor signature there."""
    data = marked_zip({"DICOMDIR": b"d" * 300})
    data = _patch_central(_patch_central(data, 20, "<L", 200), 24, "<L", 200)
    archive = _write(tmp_path / "a.zip", data)

    with pytest.raises(BrokenArchive, match="descriptor signature"):
        extract(archive, tmp_path / "out", LIMITS)

    assert not (tmp_path / "out").exists()


def test_a_marked_entry_whose_crc_would_land_in_the_central_directory_is_refused(tmp_path):
    """The descriptor cut to its signature: the CRC would be written over the directory."""
    whole = marked_zip({"DICOMDIR": b"d" * 300})
    directory = whole.find(b"PK\x01\x02")
    body = whole[: directory - 12]  # descriptor of 16 bytes cut to its 4-byte signature
    central = whole[directory : whole.find(b"PK\x05\x06")]
    archive = _write(tmp_path / "a.zip", assemble(body, [central]))

    with pytest.raises(UnsafeArchive, match="overlaps"):
        extract(archive, tmp_path / "out", LIMITS)

    assert not (tmp_path / "out").exists()


def test_the_mark_is_the_documented_field(tmp_path):
    """ID 0x5042, one byte of data, version 1: what docs/operator-pages.md and the page say."""
    assert CRC_MARK == b"\x42\x50\x01\x00\x01"
    page = Path(__file__).parents[2] / "src/pacsbridge/web/static/js/zip-writer.js"
    assert "Uint8Array.of(0x42, 0x50, 1, 0, 1)" in page.read_text()
