"""media.archive.extract against well-formed, hostile and broken ZIP archives."""

from __future__ import annotations

import shutil
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from pacsbridge.errors import ArchiveTooLarge, BrokenArchive, StorageFull, UnsafeArchive
from pacsbridge.media.archive import RATIO_FLOOR, ArchiveLimits, Stopped, extract
from pacsbridge.messages import render

from .helpers import assemble, central_header, local_header, patch_entry

LIMITS = ArchiveLimits(max_total_bytes=100_000_000, max_entries=100, max_ratio=100.0)
MB = 1024 * 1024


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def with_info(path: Path, info: zipfile.ZipInfo, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ok.dcm", b"fine")
        archive.writestr(info, data)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_normal_archive_is_extracted(tmp_path):
    archive = make_zip(
        tmp_path / "a.zip",
        {"DICOMDIR": b"dir", "DICOM/IMG1": b"x" * 5000, "EMPTY/": b"", "NOTE.TXT": b"hi"},
    )
    dest = tmp_path / "out"

    written = extract(archive, dest, LIMITS)

    assert written == ["DICOMDIR", "DICOM/IMG1", "NOTE.TXT"]
    assert (dest / "DICOM" / "IMG1").read_bytes() == b"x" * 5000
    assert (dest / "EMPTY").is_dir()
    assert files_under(dest) == ["DICOM", "DICOM/IMG1", "DICOMDIR", "EMPTY", "NOTE.TXT"]


def test_backslash_separators_become_folders(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"DICOM\\IMG1": b"data"})

    assert extract(archive, tmp_path / "out", LIMITS) == ["DICOM/IMG1"]
    assert (tmp_path / "out" / "DICOM" / "IMG1").read_bytes() == b"data"


def test_zip64_archive_is_extracted(tmp_path):
    path = tmp_path / "big.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("IMG1", "w", force_zip64=True) as member,
    ):
        member.write(b"z" * 3000)
    local = path.read_bytes()
    assert local[30:34] == b"IMG1" and local[34:36] == b"\x01\x00"  # ZIP64 extra field

    assert extract(path, tmp_path / "out", LIMITS) == ["IMG1"]
    assert (tmp_path / "out" / "IMG1").read_bytes() == b"z" * 3000


# --- unsafe --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../evil", "DICOM/../../evil", "/etc/evil", "C:/evil", "c:evil", "..\\evil", "\\evil"],
)
def test_names_escaping_the_destination_are_refused(tmp_path, name):
    archive = with_info(tmp_path / "a.zip", zipfile.ZipInfo(name), b"owned")
    dest = tmp_path / "deep" / "out"

    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, dest, LIMITS)

    assert render(caught.value.params["reason"]) == f"percorso non consentito: {name}"
    assert not dest.exists()
    assert [p.name for p in tmp_path.rglob("evil")] == []


def test_unsafe_archive_message_is_italian(tmp_path):
    archive = with_info(tmp_path / "a.zip", zipfile.ZipInfo("../x"), b"")

    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, tmp_path / "out", LIMITS)

    message = caught.value.as_dict()["message"]
    assert message == "Archivio ZIP non sicuro: percorso non consentito: ../x"
    english = caught.value.as_dict("en")["message"]  # the reason is a key too: no Italian
    assert english == "Unsafe ZIP archive: path not allowed: ../x"


def test_symbolic_link_entry_is_refused(tmp_path):
    info = zipfile.ZipInfo("LINK")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = with_info(tmp_path / "a.zip", info, b"/etc/passwd")

    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_encrypted_entry_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"IMG1": b"secret" * 100})
    archive.write_bytes(patch_entry(archive.read_bytes(), b"IMG1", flags=1))

    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, tmp_path / "out", LIMITS)
    assert render(caught.value.params["reason"]) == "file cifrati non supportati"


def test_entries_sharing_one_local_header_are_refused(tmp_path):
    """Fifield's full overlap: every central directory entry points at the same data."""
    data = b"A" * 1000
    body = local_header(b"a", data) + data
    centrals = [central_header(name, data, 0) for name in (b"a", b"b", b"c")]
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(assemble(body, centrals))

    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, tmp_path / "out", LIMITS)
    assert render(caught.value.params["reason"]) == "voci sovrapposte (zip bomb)"


def test_entry_whose_data_cover_the_next_header_is_refused(tmp_path):
    inner, outer = b"B" * 100, b"A" * 100
    second = local_header(b"b", inner) + inner
    body = local_header(b"a", outer) + outer + second
    covering = outer + second  # entry "a" claims to run through entry "b"
    centrals = [
        central_header(b"a", covering, 0),
        central_header(b"b", inner, len(body) - len(second)),
    ]
    archive = tmp_path / "overlap.zip"
    archive.write_bytes(assemble(body, centrals))

    with pytest.raises(UnsafeArchive, match="overlaps"):
        extract(archive, tmp_path / "out", LIMITS)


def test_well_formed_hand_built_archive_passes_the_overlap_check(tmp_path):
    """The builder itself is right: without overlap the same bytes extract."""
    first, second = b"A" * 100, b"B" * 100
    head_b = local_header(b"a", first) + first
    body = head_b + local_header(b"b", second) + second
    centrals = [central_header(b"a", first, 0), central_header(b"b", second, len(head_b))]
    archive = tmp_path / "fine.zip"
    archive.write_bytes(assemble(body, centrals))

    assert extract(archive, tmp_path / "out", LIMITS) == ["a", "b"]


@pytest.mark.parametrize(
    "names",
    [["IMG1", "IMG1"], ["img1.dcm", "IMG1.DCM"], ["DICOM", "DICOM/IMG1"]],
    ids=["same", "case", "file-as-folder"],
)
def test_duplicate_names_are_refused(tmp_path, names):
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we make on purpose
        for name in names:
            zf.writestr(name, b"data")

    with pytest.raises(UnsafeArchive, match="duplicate"):
        extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


# --- too large -----------------------------------------------------------------------------


def test_too_many_entries(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"IMG{n}": b"x" for n in range(11)})
    limits = ArchiveLimits(max_total_bytes=10**9, max_entries=10, max_ratio=100)

    with pytest.raises(ArchiveTooLarge) as caught:
        extract(archive, tmp_path / "out", limits)
    assert render(caught.value.params["reason"]) == "troppi file (11, massimo 10)"


def test_declared_total_over_the_limit(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"A": b"a" * 6000, "B": b"b" * 6000})
    limits = ArchiveLimits(max_total_bytes=10_000, max_entries=10, max_ratio=10_000)

    with pytest.raises(ArchiveTooLarge, match="declared 12000 bytes"):
        extract(archive, tmp_path / "out", limits)
    assert not (tmp_path / "out").exists()


def test_compression_ratio_bomb(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"ZEROS": bytes(50 * MB)})
    assert archive.stat().st_size < MB

    with pytest.raises(ArchiveTooLarge, match="compression ratio"):
        extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_small_files_may_compress_very_well(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"README.TXT": bytes(500_000)})

    assert extract(archive, tmp_path / "out", LIMITS) == ["README.TXT"]


def test_size_lie_is_caught_and_nothing_is_left(tmp_path):
    """The directory says 1,000 bytes; the data inflate to 3 MB.

    zipfile stops at the declared size and then the CRC (of 3 MB) fails; had it not stopped,
    the byte count would. Either way the first, honest entry is removed again.
    """
    archive = make_zip(tmp_path / "liar.zip", {"HONEST": b"h" * 2000, "LIAR": bytes(3 * MB)})
    archive.write_bytes(patch_entry(archive.read_bytes(), b"LIAR", file_size=1000))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "KEEP").write_bytes(b"not ours")

    with pytest.raises((BrokenArchive, ArchiveTooLarge)):
        extract(archive, dest, LIMITS)

    assert files_under(dest) == ["KEEP"]


# --- broken --------------------------------------------------------------------------------


def test_truncated_archive(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"IMG1": b"x" * 10_000, "IMG2": b"y" * 10})
    archive.write_bytes(archive.read_bytes()[:-40])

    with pytest.raises(BrokenArchive):
        extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists()


def test_not_a_zip(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"%PDF-1.4 this is a report, not an archive" * 20)

    with pytest.raises(BrokenArchive) as caught:
        extract(archive, tmp_path / "out", LIMITS)
    assert render(caught.value.params["reason"]) == "non è un archivio ZIP o è incompleto"


def test_crc_error_removes_what_was_written(tmp_path):
    archive = make_zip(
        tmp_path / "a.zip", {"A/FIRST": b"1" * 100, "B/SECOND": b"2" * 100}, zipfile.ZIP_STORED
    )
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"2" * 100, b"2" * 99 + b"3"))
    dest = tmp_path / "out"

    with pytest.raises(BrokenArchive, match="CRC"):
        extract(archive, dest, LIMITS)
    assert files_under(dest) == []


def test_unsupported_compression_method(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"IMG1": b"x" * 100})
    archive.write_bytes(patch_entry(archive.read_bytes(), b"IMG1", method=9))

    with pytest.raises(BrokenArchive) as caught:
        extract(archive, tmp_path / "out", LIMITS)
    assert (
        render(caught.value.params["reason"]) == "metodo di compressione non supportato (deflate64)"
    )


def test_corrupt_deflate_stream(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"IMG1": b"abc" * 1000})
    data = bytearray(archive.read_bytes())
    start = data.find(b"IMG1") + 4
    data[start : start + 8] = b"\xff" * 8
    archive.write_bytes(bytes(data))

    with pytest.raises(BrokenArchive):
        extract(archive, tmp_path / "out", LIMITS)
    assert files_under(tmp_path / "out") == []


# --- budgets before unpacking, names the disk would refuse, and the caller's stop -------------


def test_many_entries_each_under_the_ratio_floor_are_refused_by_the_total_ratio(tmp_path):
    """Each entry is too small for the per-entry check; together they expand 1000-fold."""
    zeros = b"\0" * (RATIO_FLOOR - 1)
    archive = make_zip(tmp_path / "a.zip", {f"f{i:03d}.bin": zeros for i in range(50)})
    dest = tmp_path / "out"

    with pytest.raises(ArchiveTooLarge, match="archive compression ratio") as caught:
        extract(archive, dest, LIMITS)

    assert "compressione sospetta dell'archivio" in caught.value.as_dict()["message"]
    assert files_under(dest) == []  # refused before the first byte


def test_declared_content_larger_than_the_free_disk_less_the_margin_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"IMG1": b"x" * 5000}, method=zipfile.ZIP_STORED)
    # A margin a gigabyte above what is free now: other processes writing or deleting while
    # this runs cannot make room for the 5000 bytes.
    free = shutil.disk_usage(tmp_path).free
    limits = ArchiveLimits(10**15, 100, 100.0, free_margin_bytes=free + 10**9)

    with pytest.raises(StorageFull):
        extract(archive, tmp_path / "out", limits)

    assert files_under(tmp_path / "out") == []
    extract(archive, tmp_path / "out", ArchiveLimits(10**15, 100, 100.0, free_margin_bytes=0))
    assert len(files_under(tmp_path / "out")) == 1  # the margin, not the archive, refused it


def test_an_empty_archive_is_broken_not_a_crash(tmp_path):
    archive = tmp_path / "a.zip"
    zipfile.ZipFile(archive, "w").close()
    with pytest.raises(BrokenArchive, match="empty zip"):
        extract(archive, tmp_path / "out", LIMITS)


@pytest.mark.parametrize(
    "name",
    [
        "A" * 256 + ".dcm",
        "è" * 128 + "/IMG",
        "/".join(["D"] * 33) + "/IMG",
        "/".join(["D" * 200] * 6),
    ],
    ids=["component-over-255-bytes", "multibyte-over-255-bytes", "33-levels", "path-over-1024"],
)
def test_names_the_file_system_would_refuse_are_refused_before_writing(tmp_path, name):
    archive = make_zip(tmp_path / "a.zip", {"ok.dcm": b"fine", name: b"x"})
    with pytest.raises(UnsafeArchive):
        extract(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


def test_the_caller_can_stop_between_files_and_nothing_is_left(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"D/IMG{i}": b"x" * 1000 for i in range(10)})
    dest = tmp_path / "out"
    asked = []

    def stop_after_three() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Stopped):
        extract(archive, dest, LIMITS, should_stop=stop_after_three)

    assert len(asked) == 4 and files_under(dest) == []
