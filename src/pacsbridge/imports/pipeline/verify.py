"""Verifica: every selected file parses completely and agrees with the analysis.

Checks per file: full parse; the UIDs the analysis recorded (SOP Instance, Series, Study, SOP
Class) are present and equal; native pixel data is as long as Rows x Columns x Samples x Bits
Allocated x Frames says (Orthanc accepts a file cut inside its pixel data), and encapsulated
pixel data has fragments. Counts must agree with the analysis. A failure names the files and
stops the import before anything reaches the PACS (a permanent error). Files are found through
``Job.original_path``, which refuses a name that would leave the import's folder.

Each problem is a said message (a key and its parameters, docs/errors.md): the monitor says it
in the reader's language, and the error's technical detail says it in English for support.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError

from pacsbridge import messages
from pacsbridge.errors import VerificationFailed
from pacsbridge.imports.models import ImportInstance
from pacsbridge.imports.pipeline.base import Done, Job, is_document

MAX_NAMED = 5


def run(job: Job) -> Done:
    instances = job.instances()
    problems: list[messages.Said] = []
    for index, instance in enumerate(instances):
        problem = check_file(job.original_path(instance), instance)
        if problem:
            said = messages.said("verify.file_problem", file=instance.path, reason=problem)
            problems.append(said)
        if index % 50 == 0:
            job.beat()
    documents = sum(1 for i in instances if is_document(i))
    problems += _count_problems(job, len(instances) - documents)
    if problems:
        more = [messages.said("verify.more")] if len(problems) > MAX_NAMED else []
        detail = "; ".join(messages.render(p, "en") for p in problems)
        raise VerificationFailed(detail, count=len(problems), files=problems[:MAX_NAMED] + more)
    return Done("done.verify", {"count": len(instances)})


def _count_problems(job: Job, found: int) -> list[messages.Said]:
    studies = job.analysis.get("studies", {})
    expected = sum(studies[u]["instance_count"] for u in job.selected_uids() if u in studies)
    if found == expected:
        return []
    return [messages.said("verify.count_mismatch", found=found, expected=expected)]


def check_file(path: Path, instance: ImportInstance) -> messages.Said | None:
    """None when the file is sound; else why not, as a said message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(path)
            ds.decode()
    except FileNotFoundError:
        return messages.said("verify.file_missing")
    except (InvalidDicomError, EOFError, ValueError, OSError, KeyError) as error:
        return messages.said("verify.unreadable", error=type(error).__name__)
    return _uid_problem(ds, instance) or _pixel_problem(ds)


def _uid_problem(ds: Dataset, instance: ImportInstance) -> messages.Said | None:
    expected = {
        "SOPInstanceUID": instance.sop_instance_uid,
        "SeriesInstanceUID": instance.series_instance_uid,
        "StudyInstanceUID": instance.study_instance_uid,
        "SOPClassUID": instance.sop_class_uid,
    }
    for keyword, value in expected.items():
        if str(ds.get(keyword, "")) != value:
            return messages.said("verify.uid_differs", keyword=keyword)
    return None


def _pixel_problem(ds: Dataset) -> messages.Said | None:
    if "PixelData" not in ds:
        return None
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_encapsulated:
        return None if _has_fragments(ds.PixelData) else messages.said("verify.empty_fragments")
    expected = _native_length(ds)
    actual = len(ds.PixelData)
    if expected and actual < expected:
        return messages.said("verify.truncated_pixels", actual=actual, expected=expected)
    return None


def _has_fragments(data: bytes) -> bool:
    """At least one non-empty fragment after the Basic Offset Table item (PS3.5 A.4)."""
    if len(data) < 8:
        return False
    first_fragment = 8 + int.from_bytes(data[4:8], "little")
    try:
        return any(len(f) > 0 for f in generate_fragments(data[first_fragment:]))
    except (ValueError, EOFError):
        return False


def _native_length(ds: Dataset) -> int:
    try:
        pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return 0
    return (pixels * frames * bits + 7) // 8
