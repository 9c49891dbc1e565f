"""Clinicians' viewing of a retrieval (FSE spec §2): its links and the images they open.

An ``available`` (or ``partial``) retrieval's FSE document carries ``viewer_url`` and
``dicomweb_url``, each with a signed token (``dicomweb.tokens``) valid for
``viewer.link_lifetime_hours`` that opens this retrieval's received instances and nothing
else (docs/integration-fse.md). The files are the cache's, named by us (``cache``); the
UIDs are our rows'. Every viewing is audited (``images.viewed``).
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
from pacsbridge.retrievals import cache
from pacsbridge.retrievals.models import ExpectedInstance, Retrieval

VIEWABLE = ("available", "partial")
CACHED = ("complete", "partial")


def links(ctx: Context, retrieval: Retrieval) -> dict[str, Any]:
    """``viewer_url`` and ``dicomweb_url`` for a viewable retrieval; nothing otherwise."""
    if retrieval.state not in VIEWABLE:
        return {}
    expires = ctx.clock.now() + timedelta(hours=ctx.settings.viewer.link_lifetime_hours)
    token = tokens.sign(secret(ctx), tokens.Scope("retrieval", retrieval.id), expires)
    base = ctx.settings.public_url
    return {
        "viewer_url": f"{base}/viewer/{token}",
        "dicomweb_url": f"{base}/dicomweb/t/{token}",
        "links_expire_at": tokens.expiry_of(token).isoformat(),
    }


def secret(ctx: Context) -> bytes:
    return tokens.secret(ctx.settings.viewer.secret_key.get_secret_value(), ctx.data_dir)


def catalogue(ctx: Context, retrieval_id: int) -> Catalogue:
    """The received instances of the retrieval's cached studies; 404 when none can be seen."""
    with ctx.sessions() as session:
        retrieval = session.get(Retrieval, retrieval_id)
        if retrieval is None or retrieval.state not in VIEWABLE:
            raise NotFoundError(f"retrieval {retrieval_id} has no images to show")
        found = []
        for link in retrieval.links:
            study = link.study
            if study.state not in CACHED:
                continue
            folder = cache.study_dir(ctx, study.id)
            query = select(ExpectedInstance).where(
                ExpectedInstance.cached_study_id == study.id, ExpectedInstance.received.is_(True)
            )
            for row in session.scalars(query):
                path = cache.instance_path(folder, row.sop_instance_uid)
                found.append(
                    Instance(
                        study.study_instance_uid,
                        row.series_instance_uid,
                        row.sop_instance_uid,
                        path,
                    )
                )
    return Catalogue.of(found)


def record(ctx: Context, retrieval_id: int, actor: str, **details: Any) -> None:
    with ctx.sessions.begin() as session:
        audit.record(
            session,
            ctx.clock.now(),
            "images.viewed",
            retrieval_id=retrieval_id,
            actor=actor,
            **subject(session, retrieval_id),
            **details,
        )


def subject(session: Session, retrieval_id: int) -> dict[str, Any]:
    """Whose images, which studies: what an ATNA Instances Accessed names (docs/atna.md)."""
    retrieval = session.get(Retrieval, retrieval_id)
    if retrieval is None:
        return {}
    studies = [link.study for link in retrieval.links if link.study.state in CACHED]
    first = studies[0] if studies else None
    return {
        "patient_id": first.patient_id if first else retrieval.patient_id,
        "issuer": first.issuer if first else "",
        "accession_number": first.accession_number if first else "",
        "study_instance_uids": [s.study_instance_uid for s in studies],
    }
