"""Where an import's files live: ``<data_dir>/imports/<id>/`` with ``archive.zip`` and ``files/``.

One place knows the layout so cancel, cleanup and the pipeline delete exactly what upload and
analysis wrote, and nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def folder(data_dir: Path, import_id: int) -> Path:
    return data_dir / "imports" / str(import_id)


def documents_dir(data_dir: Path, import_id: int) -> Path:
    """The documents of the medium wrapped into DICOM (imports/documents.py), by our numbers."""
    return folder(data_dir, import_id) / "documents"


def archive_path(data_dir: Path, import_id: int) -> Path:
    return folder(data_dir, import_id) / "archive.zip"


def files_dir(data_dir: Path, import_id: int) -> Path:
    return folder(data_dir, import_id) / "files"


def clear_files(data_dir: Path, import_id: int) -> None:
    """Empty the extracted files of an import before they are extracted again (a re-analysis
    must never mix two extractions)."""
    shutil.rmtree(files_dir(data_dir, import_id), ignore_errors=True)


def remove_orphan(path: Path) -> None:
    """Remove a folder or file under the imports folder that no live import owns (the sweep)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def delete_all(data_dir: Path, import_id: int) -> bool:
    """Remove every temporary file of the import; True when something was there."""
    path = folder(data_dir, import_id)
    existed = path.exists()
    shutil.rmtree(path, ignore_errors=True)
    return existed


def free_bytes(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(data_dir).free


def folders(data_dir: Path) -> dict[str, Path]:
    """Every import folder on disk by name (an import id, unless someone else wrote it)."""
    root = data_dir / "imports"
    if not root.is_dir():
        return {}
    return {path.name: path for path in root.iterdir()}


def media_file(data_dir: Path, import_id: int, relative: str) -> Path | None:
    """An extracted file of the import by its recorded relative path; None if it would leave
    ``files/`` (the archive's names were checked at extraction; checked again on every read)."""
    root = files_dir(data_dir, import_id).resolve()
    path = (root / relative).resolve()
    return path if relative and path.is_relative_to(root) else None
