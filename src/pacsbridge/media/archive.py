"""Safe extraction of an uploaded ZIP archive.

The archive comes from outside the hospital, so everything it declares is checked before the
first byte is written: names that would escape the destination (zip-slip), links, encryption,
entries that share compressed data (David Fifield's "better zip bomb", see
https://www.bamsoftware.com/hacks/zipbomb/), duplicates, and the entry count, total size and
compression ratio caps (per entry, and of the whole archive: many entries each just under
the per-entry floor add up), and the free disk space less a margin. Declared sizes can lie,
so the bytes actually written are counted as well. Whatever goes wrong after writing started,
the files this call wrote are removed again: a half-extracted study must never be mistaken for
a complete one. The caller may stop the extraction between two files (``should_stop``, e.g.
an import cancelled meanwhile): the files written are removed and :class:`Stopped` is raised.
Entries marked "CRC-32 to be filled by the receiver" (the upload page's, :mod:`.crcfill`) get
their CRC computed while they are written and filled into the archive once all are written.

zipfile's exceptions are translated here, once, into pacsbridge.errors (see that module).
"""

from __future__ import annotations

import lzma
import re
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pacsbridge.errors import ArchiveTooLarge, BrokenArchive, StorageFull, UnsafeArchive
from pacsbridge.media import crcfill
from pacsbridge.media.written import CountingWriter, Written
from pacsbridge.messages import said

CHUNK = 1024 * 1024
#: Below this uncompressed size the ratio is not checked: tiny text files compress very well.
RATIO_FLOOR = 1024 * 1024
SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DRIVE = re.compile(r"^[A-Za-z]:")
_DECOMPRESSION_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError)
#: Longest name of one path component in bytes (ext4, XFS, NTFS: 255).
MAX_NAME_BYTES = 255
#: Deepest folder nesting (ISO 9660 allows 8; UDF and USB sticks more, never this many).
MAX_DEPTH = 32
#: Longest relative path in bytes: it is stored in ``import_instances.path`` (1024).
MAX_PATH_BYTES = 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_entries: int
    max_ratio: float
    #: bytes that must stay free on the destination's disk after extraction
    free_margin_bytes: int = 0


class Stopped(Exception):  # noqa: N818 - the caller asked for it: not an error
    """The caller's ``should_stop`` answered True between two files; nothing is left written."""


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    target: PurePosixPath
    #: where its data end in the archive (set by the overlap check)
    data_end: int = 0

    @property
    def is_dir(self) -> bool:
        return self.info.is_dir()


def extract(
    zip_path: Path,
    dest: Path,
    limits: ArchiveLimits,
    should_stop: Callable[[], bool] | None = None,
) -> list[str]:
    """Extract ``zip_path`` under ``dest``; returns the files written, as POSIX relative paths."""
    with _open(zip_path) as archive:
        entries = check(archive, zip_path, limits)
        dest.mkdir(parents=True, exist_ok=True)
        _check_free_space(dest, entries, limits)
        written = Written(dest)
        try:
            extracted, computed = _extract_all(
                archive, entries, written, limits, should_stop or _never
            )
            crcfill.fill(zip_path, archive, computed)
            return extracted
        except BaseException:
            written.remove()
            raise


@contextmanager
def _open(zip_path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, struct.error, ValueError) as error:
        raise BrokenArchive(
            f"not a readable zip: {error}", reason=said("archive.not_zip")
        ) from error
    with archive:
        yield archive


# --- checks before writing -------------------------------------------------------------------


def check(archive: zipfile.ZipFile, zip_path: Path, limits: ArchiveLimits) -> list[_Entry]:
    """Every check that needs no extraction; returns the entries with their safe targets."""
    infos = archive.infolist()
    if not infos:
        raise BrokenArchive("empty zip", reason=said("archive.empty"))
    _check_count(infos, limits)
    entries = [_Entry(info, safe_target(info.orig_filename)) for info in infos]
    for entry in entries:
        _check_entry(entry.info)
    _check_duplicates(entries)
    _check_sizes(infos, limits)
    _check_total_ratio(infos, zip_path.stat().st_size, limits)
    ends = _check_overlaps(infos, zip_path, archive.start_dir)
    return [_Entry(e.info, e.target, ends[e.info.header_offset]) for e in entries]


def _check_count(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_entries:
        raise ArchiveTooLarge(
            f"{len(infos)} entries, limit {limits.max_entries}",
            reason=said("archive.too_many_files", count=len(infos), limit=limits.max_entries),
        )


def safe_target(name: str) -> PurePosixPath:
    """The relative path an entry may be written to; UnsafeArchive for any escape attempt.

    Backslashes are treated as separators: Windows tools write them, and on a Windows share
    ``..\\x`` would escape just like ``../x``.
    """
    unified = name.replace("\\", "/")
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    escapes = (
        unified.startswith("/")
        or ".." in parts
        or bool(_DRIVE.match(unified))
        or "\x00" in unified
        or not parts
    )
    if escapes:
        reason = said("archive.path_not_allowed", name=name)
        raise UnsafeArchive(f"unsafe entry name {name!r}", reason=reason)
    _check_path_shape(name, parts)
    return PurePosixPath(*parts)


def _check_path_shape(name: str, parts: list[str]) -> None:
    """Names the file system would refuse (ENAMETOOLONG) or folders nested beyond reason."""
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise UnsafeArchive(
            f"entry name component over {MAX_NAME_BYTES} bytes",
            reason=said("archive.name_too_long", limit=MAX_NAME_BYTES),
        )
    if len(parts) > MAX_DEPTH:
        raise UnsafeArchive(
            f"entry nested {len(parts)} levels deep",
            reason=said("archive.too_deep", limit=MAX_DEPTH),
        )
    if len("/".join(parts).encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafeArchive(
            f"entry path over {MAX_PATH_BYTES} bytes",
            reason=said("archive.path_too_long", limit=MAX_PATH_BYTES),
        )


def _check_entry(info: zipfile.ZipInfo) -> None:
    name = info.orig_filename
    if stat.S_ISLNK(info.external_attr >> 16):
        reason = said("archive.link_not_allowed", name=name)
        raise UnsafeArchive(f"symbolic link {name!r}", reason=reason)
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"encrypted entry {name!r}", reason=said("archive.encrypted"))
    if info.compress_type not in SUPPORTED_METHODS:
        method = zipfile.compressor_names.get(info.compress_type, str(info.compress_type))
        raise BrokenArchive(
            f"unsupported compression method {method} for {name!r}",
            reason=said("archive.method_unsupported", method=method),
        )
    if crcfill.marked(info):
        crcfill.check_marked(info)


def _check_duplicates(entries: list[_Entry]) -> None:
    """Two entries for one file, or a file where a folder must go.

    Compared without case: the inspection matches DICOMDIR names case-insensitively, and on a
    case-insensitive disk the second entry would overwrite the first.
    """
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        key = str(entry.target).casefold()
        folders.update(str(parent).casefold() for parent in entry.target.parents)
        if entry.is_dir:
            folders.add(key)
        elif key in files:
            raise _duplicate(entry)
        else:
            files.add(key)
    clash = next((e for e in entries if str(e.target).casefold() in files & folders), None)
    if clash is not None:
        raise _duplicate(clash)


def _duplicate(entry: _Entry) -> UnsafeArchive:
    name = entry.info.orig_filename
    return UnsafeArchive(
        f"duplicate entry {name!r}", reason=said("archive.duplicate_name", name=name)
    )


def _check_sizes(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise ArchiveTooLarge(
            f"declared {total} bytes, limit {limits.max_total_bytes}",
            reason=said(
                "archive.content_too_large", size=_mb(total), limit=_mb(limits.max_total_bytes)
            ),
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
            raise ArchiveTooLarge(
                f"{info.orig_filename!r} compression ratio {ratio:.0f}, limit {limits.max_ratio}",
                reason=said("archive.ratio_entry", ratio=f"{ratio:.0f}", name=info.orig_filename),
            )


def _check_total_ratio(
    infos: list[zipfile.ZipInfo], archive_size: int, limits: ArchiveLimits
) -> None:
    """The whole archive's ratio: entries each under the per-entry floor still add up."""
    total = sum(info.file_size for info in infos)
    ratio = total / max(archive_size, 1)
    if total > RATIO_FLOOR and ratio > limits.max_ratio:
        raise ArchiveTooLarge(
            f"archive compression ratio {ratio:.0f}, limit {limits.max_ratio}",
            reason=said("archive.ratio_total", ratio=f"{ratio:.0f}"),
        )


def _check_free_space(dest: Path, entries: list[_Entry], limits: ArchiveLimits) -> None:
    """Refuse before the first byte when the declared content would not fit with the margin."""
    needed = sum(entry.info.file_size for entry in entries)
    free = shutil.disk_usage(dest).free
    if free - limits.free_margin_bytes < needed:
        raise StorageFull(f"need {needed} bytes, {free} free, margin {limits.free_margin_bytes}")


def _never() -> bool:
    return False


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.0f} MB"


def _check_overlaps(infos: list[zipfile.ZipInfo], zip_path: Path, end: int) -> dict[int, int]:
    """Each entry's local header and data must end before the next entry (or the directory).

    Overlapping entries let a few kilobytes of compressed data be extracted thousands of times.
    The local header is read because its name and extra fields may differ in length from the
    central directory's copy. A marked entry's descriptor, where its CRC will be written, must
    fit too. Returns where each entry's data end, by header offset.
    """
    ordered = sorted(infos, key=lambda info: info.header_offset)
    ends = {}
    with zip_path.open("rb") as fp:
        for info, following in zip(ordered, [*ordered[1:], None], strict=True):
            limit = end if following is None else following.header_offset
            ends[info.header_offset] = data_end = _data_end(fp, info)
            mine = crcfill.entry_end(fp, info, data_end) if crcfill.marked(info) else data_end
            if mine > limit:
                raise UnsafeArchive(
                    f"entry {info.orig_filename!r} overlaps the next one",
                    reason=said("archive.overlapping"),
                )
    return ends


def _data_end(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    fp.seek(info.header_offset)
    raw = fp.read(_LOCAL_HEADER.size)
    if len(raw) < _LOCAL_HEADER.size or raw[:4] != _LOCAL_SIGNATURE:
        raise BrokenArchive(
            f"bad local header for {info.orig_filename!r}",
            reason=said("archive.bad_header", name=info.orig_filename),
        )
    fields = _LOCAL_HEADER.unpack(raw)
    name_length, extra_length = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size


# --- writing ---------------------------------------------------------------------------------


def _extract_all(
    archive: zipfile.ZipFile,
    entries: list[_Entry],
    written: Written,
    limits: ArchiveLimits,
    should_stop: Callable[[], bool],
) -> tuple[list[str], list[tuple[zipfile.ZipInfo, int, int]]]:
    """The files written, and (entry, data end, CRC-32) of each marked one for ``crcfill``."""
    extracted: list[str] = []
    computed: list[tuple[zipfile.ZipInfo, int, int]] = []
    remaining = limits.max_total_bytes
    for entry in entries:
        if should_stop():
            raise Stopped(f"stopped after {len(extracted)} files")
        if entry.is_dir:
            _make_folder(written, entry)
            continue
        counter = _extract_one(archive, entry, written, remaining)
        remaining -= counter.count
        extracted.append(str(entry.target))
        if counter.crc is not None:
            computed.append((entry.info, entry.data_end, counter.crc))
    return extracted, computed


def _make_folder(written: Written, entry: _Entry) -> None:
    try:
        written.folder(entry.target)
    except FileExistsError as error:
        raise _in_the_way(entry.info.orig_filename) from error


def _in_the_way(name: str) -> UnsafeArchive:
    """Only possible when ``dest`` already held something: the entries were checked."""
    return UnsafeArchive(f"{name!r} already exists", reason=said("archive.file_exists", name=name))


def _extract_one(
    archive: zipfile.ZipFile, entry: _Entry, written: Written, remaining: int
) -> CountingWriter:
    name, info = entry.info.orig_filename, entry.info
    budget = min(info.file_size, remaining)
    marked = crcfill.marked(info)
    try:
        folder = written.folder(entry.target.parent)
        source = archive.open(crcfill.unchecked(info) if marked else info)
        with source, written.file(folder / entry.target.name) as out:
            counter = CountingWriter(out, budget, name, 0 if marked else None)
            shutil.copyfileobj(source, counter, CHUNK)
    except FileExistsError as error:
        raise _in_the_way(name) from error
    except _DECOMPRESSION_ERRORS as error:
        raise BrokenArchive(
            f"{name!r}: {error}", reason=said("archive.damaged_data", name=name)
        ) from error
    return counter
