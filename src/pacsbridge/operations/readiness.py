"""``/readyz``: can this node take work now? Database, queue, free disk, the PACS, each source.

A load balancer or an orchestrator asks this every few seconds, unauthenticated, so the answer
names checks, outcomes, error codes and latencies only: never a host, an address or a patient
(docs/operations.md). Checks run in parallel (the slowest one sets the latency, not the sum),
and one answer is reused for ``health.cache_seconds``: however many probes arrive, each peer
gets at most one C-ECHO in that time, so the endpoint cannot be used to flood the PACS.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError

from pacsbridge.context import Context
from pacsbridge.db import migrate
from pacsbridge.dicomnet.echo import c_echo
from pacsbridge.dicomnet.peers import Peer
from pacsbridge.errors import PeerError


@dataclass(frozen=True)
class Check:
    """One check's outcome; ``detail`` is ``ok`` or a stable error code."""

    name: str
    ok: bool
    required: bool
    latency_ms: float
    detail: str = "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "required": self.required,
            "latency_ms": round(self.latency_ms, 1),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]
    latency_ms: float

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "latency_ms": round(self.latency_ms, 1),
            "checks": [c.as_dict() for c in self.checks],
        }


class NotReady(Exception):
    """A check failed; its argument is the stable code shown in ``detail``."""


Probe = Callable[[], None]


def check_all(ctx: Context) -> Readiness:
    """Run every check in parallel; their order in the answer is fixed."""
    probes = _probes(ctx)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="readyz") as pool:
        futures = [pool.submit(_timed, *probe) for probe in probes]
        checks = tuple(future.result() for future in futures)
    return Readiness(checks, (time.monotonic() - started) * 1000)


def _probes(ctx: Context) -> list[tuple[str, bool, Probe]]:
    health = ctx.settings.health
    probes: list[tuple[str, bool, Probe]] = [
        ("database", True, lambda: _database(ctx)),
        ("queue", True, lambda: _queue(ctx)),
        ("disk", True, lambda: _disk(ctx)),
        ("pacs", True, lambda: _echo(ctx, ctx.pacs)),
    ]
    for name, peer in ctx.network.sources.items():
        probes.append((f"source:{name}", health.sources_required, _echo_of(ctx, peer)))
    return probes


def echo_check(ctx: Context, name: str, peer: Peer) -> Check:
    """One C-ECHO with ``health.echo_timeout_seconds``, timed (the support console's sources)."""
    return _timed(name, False, _echo_of(ctx, peer))


def _echo_of(ctx: Context, peer: Peer) -> Probe:
    return lambda: _echo(ctx, peer)


def _timed(name: str, required: bool, probe: Probe) -> Check:
    started = time.monotonic()
    try:
        probe()
    except NotReady as error:
        return Check(name, False, required, _since(started), str(error))
    except Exception as error:  # noqa: BLE001 - a check that crashes is a failed check
        return Check(name, False, required, _since(started), type(error).__name__)
    return Check(name, True, required, _since(started))


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _database(ctx: Context) -> None:
    """The database answers, and its schema is the code's (an upgrade is not half-way)."""
    try:
        behind = migrate.pending(ctx.sessions.kw["bind"])  # one connection, one short read
    except SQLAlchemyError as error:
        raise NotReady("database_unavailable") from error
    if behind:
        raise NotReady("migrations_pending")


def _queue(ctx: Context) -> None:
    try:
        ctx.queue.depth()
    except Exception as error:  # noqa: BLE001 - Redis and SQLite raise their own errors
        raise NotReady("queue_unavailable") from error


def _disk(ctx: Context) -> None:
    free = shutil.disk_usage(ctx.data_dir).free
    if free < ctx.settings.health.min_free_bytes:
        raise NotReady("disk_low")


def _echo(ctx: Context, peer: Peer) -> None:
    seconds = ctx.settings.health.echo_timeout_seconds
    local = replace(
        ctx.local,
        acse_timeout=seconds,
        dimse_timeout=seconds,
        network_timeout=seconds,
        connection_timeout=seconds,
    )
    try:
        c_echo(local, peer)
    except PeerError as error:
        raise NotReady(error.code) from error


class CachedReadiness:
    """One answer per ``health.cache_seconds``; concurrent probes wait for the same run."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._last: tuple[float, Readiness] | None = None

    def get(self) -> Readiness:
        with self._lock:
            now = time.monotonic()
            if self._last and now - self._last[0] < self.ctx.settings.health.cache_seconds:
                return self._last[1]
            answer = check_all(self.ctx)
            self._last = (time.monotonic(), answer)
            return answer
