"""RIS launch: validate the patient and order, issue a token bound to both (manual §2).

The token carries 256 random bits, is stored only as its SHA-256 (a database leak gives no
usable token), expires (8 hours by default) and opens exactly one patient and one order.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pacsbridge import audit
from pacsbridge.context import Context
from pacsbridge.errors import AuthError
from pacsbridge.imports.models import Launch
from pacsbridge.imports.schemas import LaunchAnswer, LaunchRequest


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def launch(ctx: Context, request: LaunchRequest, actor: str = "ris") -> LaunchAnswer:
    """Store the launch and return the token and the import page URL."""
    token = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    expires = now + timedelta(hours=ctx.settings.ris.token_lifetime_hours)
    with ctx.sessions.begin() as session:
        row = _launch_row(request, hash_token(token), now, expires)
        session.add(row)
        session.flush()
        audit.record(
            session,
            now,
            "launch.created",
            actor=actor or "ris",
            patient_id=row.patient_id,
            order_number=row.order_number,
            launch_id=row.id,
        )
    url = f"{ctx.settings.public_url}/imports/start?token={token}"
    return LaunchAnswer(token=token, url=url, expires_at=expires.isoformat())


def _launch_row(request: LaunchRequest, token_hash: str, now, expires) -> Launch:  # noqa: ANN001
    patient, order, operator = request.patient, request.order, request.operator
    return Launch(
        token_hash=token_hash,
        created_at=now,
        expires_at=expires,
        patient_id=patient.id,
        issuer=patient.issuer,
        family_name=patient.family_name,
        given_name=patient.given_name,
        birth_date=patient.birth_date,
        sex=patient.sex,
        fiscal_code=patient.fiscal_code.upper(),
        birth_place=patient.birth_place,
        order_number=order.number,
        accession_number=order.accession_number,
        order_description=order.description,
        operator_id=operator.id,
        operator_name=operator.name,
    )


def resolve(ctx: Context, session: Session, token: str | None) -> Launch:
    """The launch a token opens, or AuthError "Token Not Found or Expired"."""
    if not token:
        raise AuthError("missing token")
    row = session.scalar(select(Launch).where(Launch.token_hash == hash_token(token)))
    if row is None or row.expires_at <= ctx.clock.now():
        raise AuthError("unknown or expired token")
    return row


def ris_patient_dict(row: Launch) -> dict[str, str]:
    """The RIS patient and order as launched (the top of the confirmation screen)."""
    return {
        "id": row.patient_id,
        "issuer": row.issuer,
        "family_name": row.family_name,
        "given_name": row.given_name,
        "birth_date": row.birth_date.isoformat(),
        "sex": row.sex,
        "fiscal_code": row.fiscal_code,
        "birth_place": row.birth_place,
        "order_number": row.order_number,
        "accession_number": row.accession_number,
        "order_description": row.order_description,
        "operator": row.operator_name,
    }
