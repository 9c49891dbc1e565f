"""What a CD, USB stick or extracted archive holds: :func:`inspect`.

With a DICOMDIR at the root, the DICOMDIR defines the content (PS3.10): files it lists are read,
DICOM files it does not list are reported and left out, because a burner that wrote a DICOMDIR
chose what belongs to the study. Without one (or with one that cannot be read), every file
under the root is examined. Either way every file ends up in exactly one place: an instance, a
problem the operator must see, or a note (viewer programs, autorun files, reports).

UIDs are checked here, where they enter (PS3.5 §9.1, :func:`pacsbridge.uids.is_valid`): a file
whose SOP Instance, Series, Study or SOP Class UID or Transfer Syntax is not a well-formed UID
becomes an "invalid UID" problem and is left out, so it can never be sent, stored or used
to name anything downstream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pacsbridge import uids
from pacsbridge.media import dicomdir, probe
from pacsbridge.media.inventory import build_inventory
from pacsbridge.media.model import (
    DICOMDIR_MISSING_FILE,
    DICOMDIR_UNREADABLE,
    DUPLICATE_INSTANCE,
    INVALID_UID,
    MISSING_UID,
    NOT_DICOM,
    UNREADABLE_FILE,
    UNREFERENCED_FILE,
    InstanceHeader,
    MediaReport,
    Problem,
)

DICOMDIR_NAME = "dicomdir"
#: Media Storage Directory Storage: the SOP Class of a DICOMDIR.
DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"


def inspect(root: Path) -> MediaReport:
    """Read every header on the medium under ``root`` and group what can be imported."""
    files = list_files(root)
    found = _Findings(root)
    used_dicomdir = False
    entry = _root_dicomdir(files)
    if entry is not None:
        used_dicomdir = _use_dicomdir(found, entry, files)
    if not used_dicomdir:
        _scan(found, [rel for rel in files if rel != entry])
    return MediaReport(
        instances=found.instances,
        inventory=build_inventory(found.instances),
        problems=found.problems,
        notes=found.notes,
        used_dicomdir=used_dicomdir,
    )


def list_files(root: Path) -> list[str]:
    """Regular files under ``root`` as sorted POSIX relative paths.

    Symbolic links are skipped, files and folders alike: they could lead outside the medium.
    """
    found: list[str] = []
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(root / folder) as entries:
            for item in entries:
                rel = f"{folder}/{item.name}" if folder else item.name
                if item.is_dir(follow_symlinks=False):
                    pending.append(rel)
                elif item.is_file(follow_symlinks=False):
                    found.append(rel)
    return sorted(found)


def _root_dicomdir(files: list[str]) -> str | None:
    return next((rel for rel in files if rel.lower() == DICOMDIR_NAME), None)


def _use_dicomdir(found: _Findings, entry: str, files: list[str]) -> bool:
    """Read what the DICOMDIR lists; False (with a problem) when it cannot be used."""
    try:
        listed = dicomdir.referenced_files(found.root / entry)
    except dicomdir.DicomdirUnreadable as error:
        found.problem(DICOMDIR_UNREADABLE, entry, str(error))
        return False
    actual = _case_insensitive(files)
    referenced = set()
    for file_id in listed:
        rel = actual.get(file_id.lower())
        if rel is None:
            found.problem(DICOMDIR_MISSING_FILE, file_id, "listed in the DICOMDIR, not on media")
        else:
            referenced.add(rel)
    for rel in files:
        if rel in referenced:
            found.read(rel)
        elif rel != entry:
            _unreferenced(found, rel)
    return True


def _case_insensitive(files: list[str]) -> dict[str, str]:
    """Lower-cased path → real path: CD burners upper-case names, file systems may not."""
    actual: dict[str, str] = {}
    for rel in files:
        actual.setdefault(rel.lower(), rel)
    return actual


def _unreferenced(found: _Findings, rel: str) -> None:
    if found.is_dicom(rel):
        found.problem(UNREFERENCED_FILE, rel, "DICOM file not listed in the DICOMDIR")
    else:
        found.note(rel)


def _scan(found: _Findings, files: list[str]) -> None:
    for rel in files:
        try:
            examined = probe.examine(found.root, rel)
        except OSError as error:
            found.problem(UNREADABLE_FILE, rel, str(error))
            continue
        if examined.kind == probe.PART10:
            found.take(rel, examined)
        elif _identified(examined.header):
            found.accept(examined.header)
        else:
            found.note(rel)


def _identified(header: InstanceHeader | None) -> bool:
    """A file without marker is DICOM only if its identifying UIDs were found in it."""
    return header is not None and bool(header.sop_instance_uid and header.study_instance_uid)


@dataclass
class _Findings:
    """What inspecting has found so far; keeps the first file of every SOP Instance UID."""

    root: Path
    instances: list[InstanceHeader] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    first_path: dict[str, str] = field(default_factory=dict)

    def problem(self, code: str, rel: str, detail: str) -> None:
        self.problems.append(Problem(code=code, file=rel, detail=detail))

    def note(self, rel: str) -> None:
        self.notes.append(Problem(code=NOT_DICOM, file=rel, detail="not a DICOM file"))

    def read(self, rel: str) -> None:
        """A file that must be DICOM: the DICOMDIR lists it."""
        try:
            examined = probe.examine(self.root, rel)
        except OSError as error:
            self.problem(UNREADABLE_FILE, rel, str(error))
            return
        if examined.kind == probe.OTHER:
            self.problem(UNREADABLE_FILE, rel, "not a DICOM file")
        else:
            self.take(rel, examined)

    def take(self, rel: str, examined: probe.Examined) -> None:
        if examined.header is None:
            self.problem(UNREADABLE_FILE, rel, str(examined.error))
        else:
            self.accept(examined.header)

    def is_dicom(self, rel: str) -> bool:
        try:
            examined = probe.examine(self.root, rel)
        except OSError:
            return False
        return examined.kind == probe.PART10 or _identified(examined.header)

    def accept(self, header: InstanceHeader) -> None:
        if header.sop_class_uid == DIRECTORY_SOP_CLASS:
            # Sticks often hold copies of several CDs, each folder with its own DICOMDIR.
            self.notes.append(Problem(NOT_DICOM, header.path, "DICOMDIR in a subfolder: not used"))
            return
        missing = _missing_uids(header)
        if missing:
            self.problem(MISSING_UID, header.path, "missing " + ", ".join(missing))
            return
        invalid = invalid_uids(header)
        if invalid:
            self.problem(INVALID_UID, header.path, "invalid " + ", ".join(invalid))
            return
        first = self.first_path.setdefault(header.sop_instance_uid, header.path)
        if first != header.path:
            detail = f"SOP Instance UID {header.sop_instance_uid} already in {first}"
            self.problem(DUPLICATE_INSTANCE, header.path, detail)
            return
        self.instances.append(header)


def _missing_uids(header: InstanceHeader) -> list[str]:
    wanted = {
        "SOPInstanceUID": header.sop_instance_uid,
        "StudyInstanceUID": header.study_instance_uid,
        "SeriesInstanceUID": header.series_instance_uid,
    }
    return [name for name, value in wanted.items() if not value]


def invalid_uids(header: InstanceHeader) -> list[str]:
    """The names of the header's UIDs that break the UID grammar (never their values).

    The values stay out of the problem's detail: a hostile one may be long, or shaped like a
    path or a URL, and the detail is shown and audited.
    """
    checked = {
        "SOPInstanceUID": header.sop_instance_uid,
        "SeriesInstanceUID": header.series_instance_uid,
        "StudyInstanceUID": header.study_instance_uid,
        "SOPClassUID": header.sop_class_uid,
        "TransferSyntaxUID": header.transfer_syntax_uid,
    }
    return [name for name, value in checked.items() if not uids.is_valid(value)]
