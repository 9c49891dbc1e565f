"""What a phase receives and returns, and where a phase finds an instance's files.

Files the pipeline writes are named from our own ids, never from data: the reconciled copy of
an instance is ``reconciled/<ImportInstance id>.dcm``. A UID from a medium only names files
after the UID grammar has been checked, and not even then: a name derived from data is a name
an attacker can choose (docs/architecture.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pacsbridge.context import Context
from pacsbridge.errors import VerificationFailed
from pacsbridge.imports import documents, workspace
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy, Launch


@dataclass(frozen=True)
class Done:
    """A phase finished: the message shown on the monitor, with its parameters."""

    message_key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """An optional phase that is not configured ("non configurato")."""


@dataclass
class Job:
    """One pipeline run of one import."""

    ctx: Context
    import_id: int
    launch: Launch
    analysis: dict[str, Any]
    beat: Callable[[], None] = lambda: None

    @property
    def files_dir(self) -> Path:
        return workspace.files_dir(self.ctx.data_dir, self.import_id)

    @property
    def reconciled_dir(self) -> Path:
        return workspace.folder(self.ctx.data_dir, self.import_id) / "reconciled"

    def selected_uids(self) -> list[str]:
        with self.ctx.sessions() as session:
            query = select(ImportStudy.study_instance_uid).where(
                ImportStudy.import_id == self.import_id, ImportStudy.selected.is_(True)
            )
            return list(session.scalars(query))

    def instances(self, state: str | None = None) -> list[ImportInstance]:
        """Instances of the selected studies (optionally only those in ``state``)."""
        uids = self.selected_uids()
        with self.ctx.sessions() as session:
            query = select(ImportInstance).where(
                ImportInstance.import_id == self.import_id,
                ImportInstance.study_instance_uid.in_(uids),
            )
            if state is not None:
                query = query.where(ImportInstance.state == state)
            return list(session.scalars(query.order_by(ImportInstance.id)))

    def source_path(self, instance: ImportInstance) -> Path:
        """The file the send phase stores: the reconciled copy when reconciliation is on."""
        if self.ctx.settings.imports.reconcile:
            return self.reconciled_path(instance)
        return self.original_path(instance)

    def reconciled_path(self, instance: ImportInstance) -> Path:
        """Named by the row id: nothing on the medium can choose it."""
        return self.reconciled_dir / f"{instance.id}.dcm"

    def original_path(self, instance: ImportInstance) -> Path:
        """The extracted file; the archive's entry names were checked when it was unpacked,
        and a name that would still leave ``files/`` is refused here as well. A wrapped
        document of the medium (path ``/documents/<n>.dcm``) is in ``documents/``."""
        if is_document(instance):
            name = instance.path.removeprefix(documents.MARKER)
            if not re.fullmatch(r"\d+\.dcm", name):
                raise VerificationFailed(f"instance {instance.id}: bad document", count=1, files="")
            return workspace.documents_dir(self.ctx.data_dir, self.import_id) / name
        root = self.files_dir.resolve()
        path = (root / instance.path).resolve()
        if not path.is_relative_to(root):
            raise VerificationFailed(
                f"instance {instance.id}: path leaves the import folder", count=1, files=""
            )
        return path

    def import_row(self) -> Import:
        with self.ctx.sessions() as session:
            row = session.get(Import, self.import_id)
            assert row is not None
            return row


def is_document(instance: ImportInstance) -> bool:
    """A document of the medium wrapped at confirmation (imports/documents.py)."""
    return instance.path.startswith(documents.MARKER)


Outcome = Done | Skipped
Phase = Callable[[Job], Outcome]
