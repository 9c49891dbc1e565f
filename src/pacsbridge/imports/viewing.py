"""The operator's preview of an import's uploaded media, before confirming ("Visualizza immagini").

The operator sees what the medium holds (a name burned into the pixels, the wrong body part)
before anything reaches the PACS. The preview opens with the operator's page session, for an
import within the session's scope (``scope``), through a token scoped to that import only and
expiring with the launch at the latest. The files are read through the same safe path as the
pipeline (``workspace.media_file``); the UIDs are the analysis's rows. Audited
(``images.viewed``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.dicomweb import tokens
from pacsbridge.dicomweb.catalogue import Catalogue, Instance
from pacsbridge.errors import NotFoundError
from pacsbridge.imports import workspace
from pacsbridge.imports.models import Import, ImportInstance, ImportStudy, Launch
from pacsbridge.imports.scope import load_import


def open_preview(ctx: Context, import_id: int, launch: Launch) -> str:
    """A token for this import's images (404 outside the session's scope), audited."""
    now = ctx.clock.now()
    with ctx.sessions.begin() as session:
        row = load_import(session, import_id, launch)
        if row.files_deleted:
            raise NotFoundError(f"import {import_id} has no files any more")
        lifetime = timedelta(hours=ctx.settings.viewer.link_lifetime_hours)
        expires = min(now + lifetime, _aware(launch.expires_at, now))
        token = tokens.sign(secret(ctx), tokens.Scope("import", import_id), expires)
        audit.record(
            session,
            now,
            "images.viewed",
            import_id=import_id,
            actor=launch.operator_id or launch.operator_name,
            via="preview",
            **subject(session, import_id),
            link_expires_at=tokens.expiry_of(token).isoformat(),
        )
    return token


def _aware(moment: Any, now: Any) -> Any:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=now.tzinfo)


def secret(ctx: Context) -> bytes:
    return tokens.secret(ctx.settings.viewer.secret_key.get_secret_value(), ctx.data_dir)


def catalogue(ctx: Context, import_id: int) -> Catalogue:
    """The extracted files the analysis recorded; 404 once they are gone."""
    with ctx.sessions() as session:
        row = session.get(Import, import_id)
        if row is None or row.files_deleted:
            raise NotFoundError(f"import {import_id} has no files")
        query = select(ImportInstance).where(ImportInstance.import_id == import_id)
        found = []
        for instance in session.scalars(query):
            path = workspace.media_file(ctx.data_dir, import_id, instance.path)
            if path is not None:
                found.append(
                    Instance(
                        instance.study_instance_uid,
                        instance.series_instance_uid,
                        instance.sop_instance_uid,
                        path,
                    )
                )
    return Catalogue.of(found)


def record(ctx: Context, import_id: int, actor: str, **details: Any) -> None:
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "images.viewed",
            import_id=import_id,
            actor=actor,
            **subject(session, import_id),
            **details,
        )


def subject(session: Session, import_id: int) -> dict[str, Any]:
    """The import's patient and studies: what an ATNA Instances Accessed names (docs/atna.md)."""
    row = session.get(Import, import_id)
    if row is None:
        return {}
    query = select(ImportStudy.study_instance_uid).where(ImportStudy.import_id == import_id)
    launch = row.launch
    return {
        "patient_id": launch.patient_id,
        "issuer": launch.issuer,
        "accession_number": launch.accession_number,
        "study_instance_uids": sorted(session.scalars(query)),
    }
