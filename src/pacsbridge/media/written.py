"""What one extraction wrote (:mod:`pacsbridge.media.archive`): counted, and taken back on failure.

Declared sizes can lie, so the bytes really written are counted against a budget; whatever goes
wrong, every file and folder the extraction created is removed again (a half-extracted study
must never be mistaken for a complete one).
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pacsbridge.errors import ArchiveTooLarge
from pacsbridge.messages import said


class Written:
    """What this call created under ``dest``, so that a failure can take it all back."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.paths: list[Path] = []

    def folder(self, rel: PurePosixPath) -> Path:
        path = self.dest
        for part in rel.parts:
            path = path / part
            if path.is_symlink():
                raise FileExistsError(f"{path} is a link")
            if not path.is_dir():
                path.mkdir()  # FileExistsError when a file is in the way
                self.paths.append(path)
        return path

    def file(self, path: Path) -> BinaryIO:
        handle = path.open("xb")  # never overwrite, never follow a link planted before us
        self.paths.append(path)
        return handle

    def remove(self) -> None:
        for path in reversed(self.paths):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


class CountingWriter:
    """Counts what is really written and stops at the budget: declared sizes can lie.

    ``crc``: the CRC-32 of the bytes written, for a marked entry (None: zipfile checks it).
    """

    def __init__(self, out: BinaryIO, budget: int, name: str, crc: int | None) -> None:
        self.out, self.budget, self.name, self.count, self.crc = out, budget, name, 0, crc

    def write(self, data: bytes) -> int:
        self.count += len(data)
        if self.count > self.budget:
            raise ArchiveTooLarge(
                f"{self.name!r} expands beyond its declared size or the total limit",
                reason=said("archive.larger_than_declared", name=self.name),
            )
        if self.crc is not None:
            self.crc = zlib.crc32(data, self.crc)
        return self.out.write(data)
