"""The patient's package: a stored zip with DICOMDIR, README.TXT and ``DICOM/`` (IHE PDI).

Written once into the cache and served with ``FileResponse``, which answers Range requests:
an interrupted download resumes, and memory stays flat (each file is copied in 1 MiB blocks;
nothing is held whole). Stored, not deflated: pixel data barely compresses and deflate is 4-20
times slower (docs/engineering-notes.md). Files are the bytes our SCP received, under the
File IDs the DICOMDIR names: counters of ours (``DICOM/PT000000/ST000000/...``), never a UID.
Only instances our receiver admitted are in the cache, and only the rows marked received are
packaged and counted. A ``partial`` retrieval's README lists what is missing.

Two simultaneous first downloads may both build; each writes its own temporary file and the
rename is atomic, so either result is whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydicom import Dataset
from pydicom.filereader import read_file_meta_info
from sqlalchemy import select

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import ConflictError, NotFoundError
from pacsbridge.retrievals import cache, dicomdir, lifecycle, readme, viewing, views
from pacsbridge.retrievals.models import CachedStudy, ExpectedInstance, Retrieval

BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file of the package: where it is in the cache, and its name in the zip."""

    source: Path
    name: str


def build(ctx: Context, retrieval_id: int) -> Path:
    """The package's path, building it the first time."""
    target = cache.package_path(ctx, retrieval_id)
    linked, not_found = _servable(ctx, retrieval_id)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    studies = [s for s in linked if s.received_count]
    contents = _contents(ctx, studies)
    directory, file_ids = dicomdir.encode(m for m, _ in contents)
    entries = [Entry(path, name) for (_, path), name in zip(contents, file_ids, strict=True)]
    absent = [s for s in linked if not s.received_count]
    text = readme.text(ctx, studies, len(entries), absent, not_found)
    part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    try:
        write_zip(part, directory, text, entries, ctx.clock.now())
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _servable(ctx: Context, retrieval_id: int) -> tuple[list[CachedStudy], list[str]]:
    """Every study of a retrieval that may be packaged (available or partial), and the
    accession numbers of the request that matched none."""
    with ctx.sessions() as session:
        retrieval = session.get(Retrieval, retrieval_id)
        if retrieval is None:
            raise NotFoundError(f"retrieval {retrieval_id}")
        if not lifecycle.servable(retrieval.state):
            raise ConflictError(f"package not available: retrieval is {retrieval.state}")
        return [link.study for link in retrieval.links], views.not_found_accessions(retrieval)


def _contents(ctx: Context, studies: list[CachedStudy]) -> list[tuple[dicomdir.Member, Path]]:
    """Every received instance, ordered by series then instance number, with its metadata."""
    found = []
    with ctx.sessions() as session:
        for study in studies:
            study_ds = Dataset.from_json(study.study_metadata["study"])
            series = _series(study)
            folder = cache.study_dir(ctx, study.id)
            query = select(ExpectedInstance).where(
                ExpectedInstance.cached_study_id == study.id, ExpectedInstance.received.is_(True)
            )
            for row in sorted(session.scalars(query), key=lambda r: _order(series, r)):
                path = cache.instance_path(folder, row.sop_instance_uid)
                meta = read_file_meta_info(path)  # the file's own SOP class and syntax
                member = dicomdir.Member(
                    study=study_ds,
                    series=series.get(row.series_instance_uid) or _bare_series(row),
                    sop_instance_uid=row.sop_instance_uid,
                    sop_class_uid=str(meta.get("MediaStorageSOPClassUID") or row.sop_class_uid),
                    transfer_syntax_uid=str(meta.TransferSyntaxUID),
                    instance_number=row.instance_number,
                )
                found.append((member, path))
    return found


def _series(study: CachedStudy) -> dict[str, Dataset]:
    datasets = [Dataset.from_json(s) for s in study.study_metadata.get("series") or []]
    return {str(ds.SeriesInstanceUID): ds for ds in datasets}


def _bare_series(row: ExpectedInstance) -> Dataset:
    ds = Dataset()
    ds.SeriesInstanceUID = row.series_instance_uid
    return ds


def _order(series: dict[str, Dataset], row: ExpectedInstance) -> tuple[int, str, int]:
    ds = series.get(row.series_instance_uid)
    number = ds.get("SeriesNumber") if ds is not None else None
    return (
        int(number) if number not in (None, "") else 0,
        row.series_instance_uid,
        row.instance_number or 0,
    )


def write_zip(
    path: Path, directory: bytes, text: str, entries: list[Entry], when: datetime
) -> None:
    """Stored entries, ZIP64 when needed, each file copied in blocks (flat memory)."""
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo("DICOMDIR", stamp), directory)
        zf.writestr(zipfile.ZipInfo("README.TXT", stamp), text.encode("ascii", "replace"))
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, stamp)
            info.file_size = entry.source.stat().st_size
            with entry.source.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, BLOCK)


def download_name(retrieval_id: int) -> str:
    return f"immagini-{retrieval_id}.zip"


@dataclass(frozen=True)
class Downloader:
    """Who asked for a package: the name of the FSE API key, and the client's address."""

    client: str = ""
    address: str = ""


def record_download(
    ctx: Context,
    retrieval_id: int,
    path: Path,
    byte_range: str | None,
    who: Downloader | None = None,
) -> None:
    """Every download is an audit event naming who asked (the requesting party of the ATNA
    DICOM Instances Accessed, docs/atna.md); a resumed one says which bytes it asked for."""
    now, who = ctx.clock.now(), who or Downloader()
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            now,
            "package.downloaded",
            retrieval_id=retrieval_id,
            actor=who.client,
            address=who.address,
            **viewing.subject(session, retrieval_id),
            size_bytes=path.stat().st_size,
            range=byte_range or "",
        )
