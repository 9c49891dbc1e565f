"""The PACS and the sources as the support console shows them (docs/support.md).

For each peer: a C-ECHO made now, with ``health.echo_timeout_seconds`` and its latency (the
echoes run in parallel, so the page waits for the slowest, not the sum); the C-MOVEs running
now; the failures of the last hour; and, for a source, whether it is paused. Cross-domain
(imports for the PACS, retrievals for the sources), so it lives here, not in a domain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from pacsbridge.audit import AuditEvent
from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.operations.readiness import echo_check
from pacsbridge.retrievals import pauses
from pacsbridge.retrievals.lifecycle import StudyState
from pacsbridge.retrievals.models import CachedStudy, Retrieval

#: Audit kinds that count as a failure of a source, and of the PACS (the import pipeline).
SOURCE_FAILURES = ("retrieval.failed",)
PACS_FAILURES = ("phase.retry", "phase.failed", "duplicates.unreachable")


def overview(ctx: Context) -> list[dict[str, Any]]:
    """The PACS first, then the sources in configuration order."""
    peers = [("pacs", ctx.settings.pacs.name or "PACS", ctx.pacs)]
    peers += [("source", name, peer) for name, peer in ctx.network.sources.items()]
    with ThreadPoolExecutor(max_workers=max(len(peers), 1)) as pool:
        checks = list(pool.map(lambda p: echo_check(ctx, p[1], p[2]), peers))
    paused = pauses.paused(ctx)
    since = ctx.clock.now() - timedelta(hours=1)
    rows = []
    for (kind, name, peer), check in zip(peers, checks, strict=True):
        pause = paused.get(name) if kind == "source" else None
        rows.append(
            {
                "kind": kind,
                "name": name,
                "ae_title": peer.ae_title,
                "host": peer.host,
                "port": peer.port,
                "echo_ok": check.ok,
                "echo_detail": check.detail,
                "latency_ms": round(check.latency_ms, 1),
                "moves_running": _moves(ctx, name) if kind == "source" else None,
                "failures_last_hour": _failures(ctx, kind, name, since),
                "paused": pause is not None,
                "paused_by": pause.paused_by if pause else "",
                "paused_at": pause.paused_at if pause else None,
            }
        )
    return rows


def _moves(ctx: Context, source: str) -> int:
    """Studies of the source being moved now: ``moving`` under a live lease."""
    now = ctx.clock.now()
    query = select(func.count()).where(
        CachedStudy.source == source,
        CachedStudy.state == StudyState.MOVING,
        ledger.live(CachedStudy, now),
    )
    with ctx.sessions() as session:
        return session.scalar(query) or 0


def _failures(ctx: Context, kind: str, name: str, since: Any) -> int:
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.at >= since)
    if kind == "pacs":
        query = query.where(AuditEvent.kind.in_(PACS_FAILURES))
    else:
        query = query.join(Retrieval, Retrieval.id == AuditEvent.retrieval_id).where(
            AuditEvent.kind.in_(SOURCE_FAILURES), Retrieval.source == name
        )
    with ctx.sessions() as session:
        return session.scalar(query) or 0
