"""What a launch token may see: imports of its own patient and order, nothing else.

A token opened for one patient must not read another patient's import, even by guessing ids,
so an import outside the scope answers 404 exactly like one that does not exist. A patient is
the Patient ID *and* its issuer: the same id under another issuer (another hospital's
numbering) is another person, so the issuer of the import's own launch must match too.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pacsbridge.errors import NotFoundError
from pacsbridge.imports.models import Import, Launch


def in_scope(row: Import | None, launch: Launch) -> bool:
    return (
        row is not None
        and row.patient_id == launch.patient_id
        and row.order_number == launch.order_number
        and row.launch.issuer == launch.issuer
    )


def load_import(session: Session, import_id: int, launch: Launch) -> Import:
    row = session.get(Import, import_id)
    if row is None or not in_scope(row, launch):
        raise NotFoundError(f"import {import_id} not found")
    return row
