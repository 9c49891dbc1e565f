"""What one viewing scope holds: instances addressed by validated UIDs, each with our file.

A scope (one retrieval's cached studies, one import's uploaded media) is turned by its domain
into a :class:`Catalogue`: the UIDs come from our own rows (already checked against the UID
grammar) and the path is one we named (docs/architecture.md). A UID in a request is only ever
compared with these; it never becomes a path. A UID that is not in the catalogue is a 404,
exactly like one that exists in another scope.

Headers are read once per file version (path, size, modification time) and kept in a small
LRU: a viewer asks QIDO and metadata of the same study many times while scrolling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydicom import Dataset, dcmread

from pacsbridge import uids
from pacsbridge.errors import NotFoundError

#: Headers kept in memory (without pixel data: a few kilobytes each).
HEADER_CACHE = 4096


@dataclass(frozen=True)
class Instance:
    """One instance of a scope: its UIDs (from our rows) and its file (named by us)."""

    study: str
    series: str
    sop: str
    path: Path


@dataclass(frozen=True)
class Catalogue:
    """The instances one token or session may see, in a stable order."""

    instances: tuple[Instance, ...]

    @classmethod
    def of(cls, instances: Iterable[Instance]) -> Catalogue:
        """Only instances whose three UIDs are valid and whose file is there."""
        kept = [
            i
            for i in instances
            if uids.is_valid(i.study) and uids.is_valid(i.series) and uids.is_valid(i.sop)
        ]
        kept = [i for i in kept if i.path.is_file()]
        kept.sort(key=lambda i: (i.study, i.series, i.sop))
        return cls(tuple(kept))

    def select(self, study: str, series: str | None = None) -> list[Instance]:
        """The instances of a study (or one of its series); NotFoundError when none."""
        found = [
            i for i in self.instances if i.study == study and (series is None or i.series == series)
        ]
        if not found:
            raise NotFoundError("no such study or series in this scope")
        return found

    def one(self, study: str, series: str, sop: str) -> Instance:
        for instance in self.instances:
            if (instance.study, instance.series, instance.sop) == (study, series, sop):
                return instance
        raise NotFoundError("no such instance in this scope")


def header(instance: Instance) -> Dataset:
    """The instance's data set without pixel data (cached per file version)."""
    stat = instance.path.stat()
    return _header(str(instance.path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=HEADER_CACHE)
def _header(path: str, size: int, mtime_ns: int) -> Dataset:  # noqa: ARG001 - cache key
    return dcmread(path, stop_before_pixels=True)
