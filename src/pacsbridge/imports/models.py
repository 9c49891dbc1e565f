"""Tables of the import domain: Launch, Import, ImportStudy, ImportInstance, PhaseRun.

The Import row is also the job ledger of its pipeline (phase, lease), because Huey delivers at
most once: whatever a killed worker was doing is found again from these rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pacsbridge.db.base import Base
from pacsbridge.jobs.ledger import Scheduled


class Launch(Base):
    """A RIS launch: one patient, one order, one token (stored only as its SHA-256)."""

    __tablename__ = "launches"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    patient_id: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(64), default="")
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(String(1))
    fiscal_code: Mapped[str] = mapped_column(String(16), default="")
    birth_place: Mapped[str] = mapped_column(String(200), default="")
    order_number: Mapped[str] = mapped_column(String(64))
    accession_number: Mapped[str] = mapped_column(String(16), default="")
    order_description: Mapped[str] = mapped_column(String(200), default="")
    operator_id: Mapped[str] = mapped_column(String(64), default="")
    operator_name: Mapped[str] = mapped_column(String(200), default="")


class Import(Scheduled, Base):
    """One import attempt: upload, analysis, confirmation, pipeline."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_order", "patient_id", "order_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    launch_id: Mapped[int] = mapped_column(ForeignKey("launches.id"))
    patient_id: Mapped[str] = mapped_column(String(64))
    order_number: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default="created")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archive_size: Mapped[int | None] = mapped_column(default=None)
    received_bytes: Mapped[int] = mapped_column(default=0)
    analysis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any]] = mapped_column(default=dict)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    files_deleted: Mapped[bool] = mapped_column(default=False)

    launch: Mapped[Launch] = relationship(lazy="joined")
    studies: Mapped[list[ImportStudy]] = relationship(
        back_populates="import_", order_by="ImportStudy.id", cascade="all, delete-orphan"
    )


class ImportStudy(Base):
    """A study found on the media and what the PACS said about it."""

    __tablename__ = "import_studies"
    __table_args__ = (UniqueConstraint("import_id", "study_instance_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    instance_count: Mapped[int] = mapped_column(default=0)
    #: absent | present | conflict | partial | unknown (PACS unreachable)
    pacs_status: Mapped[str] = mapped_column(String(16), default="unknown")
    selected: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(32), default="pending")

    import_: Mapped[Import] = relationship(back_populates="studies")


class ImportInstance(Base):
    """One file of a study; its own store state so a retry sends only what is missing."""

    __tablename__ = "import_instances"
    __table_args__ = (
        UniqueConstraint("import_id", "sop_instance_uid"),
        Index("ix_instances_study", "import_id", "study_instance_uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64), default="")
    path: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(default=0)
    #: pending | stored | failed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    status: Mapped[int | None] = mapped_column(default=None)
    detail: Mapped[str] = mapped_column(String(500), default="")


class PhaseRun(Base):
    """A pipeline phase of an import: what the monitor page shows."""

    __tablename__ = "phase_runs"
    __table_args__ = (UniqueConstraint("import_id", "phase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    phase: Mapped[str] = mapped_column(String(32))
    #: an ``imports.lifecycle.PhaseState``
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts_left: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    #: what the phase says (``messages.said``): rendered where it is read, in the reader's
    #: language (docs/errors.md, "Errors carry keys")
    message_key: Mapped[str] = mapped_column(String(64), default="")
    message_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
