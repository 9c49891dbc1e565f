"""Tables of the retrieval gateway: Retrieval, CachedStudy, RetrievalStudy, ExpectedInstance...

Why these rows and not memory: Huey delivers at most once and a deployment may run several
worker processes, so everything that must be shared or survive a killed worker lives here:

- ``Retrieval`` is one FSE request and its own job ledger row (lease, retry_at, attempts left).
- ``CachedStudy`` is one study in the cache. ``live_key`` is unique while the entry lives, so
  two requests for the same study (in any process) find the same row; its ``lease_until`` is
  the one C-MOVE in flight for that study. Expired or failed entries set ``live_key`` to NULL,
  which frees the key for a new retrieval and keeps the old row as history.
- ``ExpectedInstance`` is the IMAGE-level list known before the C-MOVE (ADIT): what the
  receiver admits and what completeness is checked against.
- ``SourceSlot`` rows are a cross-process semaphore: ``max_concurrent_retrievals`` per source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pacsbridge.db.base import Base
from pacsbridge.jobs.ledger import Leased, Scheduled


class Retrieval(Scheduled, Base):
    """One FSE request: a source, accession numbers, optionally patient and issuer."""

    __tablename__ = "retrievals"
    __table_args__ = (Index("ix_retrievals_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    accession_numbers: Mapped[list[Any]] = mapped_column(default=list)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    issuer: Mapped[str] = mapped_column(String(64), default="")
    #: ``lifecycle.RetrievalState``, set at creation and changed only by ``lifecycle.move``
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: errors of the request itself (query, source down); study errors live on the study
    errors: Mapped[list[Any]] = mapped_column(default=list)
    #: what the caller should know without it being an error (no IMAGE level, capped C-FIND)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    cache_hit: Mapped[bool] = mapped_column(default=False)
    attempts_left: Mapped[int] = mapped_column(default=1)

    links: Mapped[list[RetrievalStudy]] = relationship(
        back_populates="retrieval", order_by="RetrievalStudy.id", cascade="all, delete-orphan"
    )


class CachedStudy(Leased, Base):
    """One study of one source in the cache, shared by every retrieval that asks for it."""

    __tablename__ = "cached_studies"
    __table_args__ = (
        Index("ix_cached_studies_key", "key"),
        Index("ix_cached_studies_state", "state"),
        Index("ix_cached_studies_accession", "source", "accession_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: sha256 of source, issuer, patient id and study UID (two hospitals may reuse UIDs)
    key: Mapped[str] = mapped_column(String(64))
    #: ``key`` while the entry lives; NULL once expired or failed (NULLs never collide)
    live_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    source: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(64), default="")
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    accession_number: Mapped[str] = mapped_column(String(64), default="")
    #: ``lifecycle.StudyState``, set at creation and changed only by ``lifecycle.move_study``
    state: Mapped[str] = mapped_column(String(16))
    #: {"study": DICOM JSON, "series": [DICOM JSON...]} from the C-FINDs
    study_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the IMAGE-level list is the whole study (False: no IMAGE level, or a capped C-FIND)
    uid_list_complete: Mapped[bool] = mapped_column(default=True)
    expected_count: Mapped[int] = mapped_column(default=0)
    received_count: Mapped[int] = mapped_column(default=0)
    size_bytes: Mapped[int] = mapped_column(default=0)
    move_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cached_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    instances: Mapped[list[ExpectedInstance]] = relationship(
        back_populates="study", order_by="ExpectedInstance.id", cascade="all, delete-orphan"
    )


class RetrievalStudy(Base):
    """Which cached studies answer which retrieval (many to many)."""

    __tablename__ = "retrieval_studies"
    __table_args__ = (UniqueConstraint("retrieval_id", "cached_study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    retrieval_id: Mapped[int] = mapped_column(ForeignKey("retrievals.id"))
    cached_study_id: Mapped[int] = mapped_column(ForeignKey("cached_studies.id"), index=True)
    from_cache: Mapped[bool] = mapped_column(default=False)

    retrieval: Mapped[Retrieval] = relationship(back_populates="links")
    study: Mapped[CachedStudy] = relationship(lazy="joined")


class ExpectedInstance(Base):
    """One instance the IMAGE-level C-FIND listed (or, without IMAGE level, that arrived)."""

    __tablename__ = "expected_instances"
    __table_args__ = (
        UniqueConstraint("cached_study_id", "sop_instance_uid"),
        Index("ix_expected_sop", "sop_instance_uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cached_study_id: Mapped[int] = mapped_column(ForeignKey("cached_studies.id"))
    series_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64), default="")
    instance_number: Mapped[int | None] = mapped_column(default=None)
    received: Mapped[bool] = mapped_column(default=False)
    size_bytes: Mapped[int] = mapped_column(default=0)

    study: Mapped[CachedStudy] = relationship(back_populates="instances")


class SourceSlot(Leased, Base):
    """One of a source's ``max_concurrent_retrievals`` slots, held by a lease while moving."""

    __tablename__ = "source_slots"
    __table_args__ = (UniqueConstraint("source", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int]


class SourcePause(Base):
    """A paused source (support console): present while paused, shared by every node.

    A row, not memory, because every worker process on every node must see the pause before
    it issues the next C-FIND or C-MOVE to that source (docs/support.md).
    """

    __tablename__ = "source_pauses"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_at: Mapped[datetime]
    paused_by: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
