"""A thin wrapper over Huey: named tasks, enqueue by name, an embeddable consumer.

Why a wrapper: domain modules register plain functions at run time (settings are only known
then), and enqueue by name (``ledger.Task``), so nothing builds a Huey instance at import
time. Retries are NOT Huey's: they live in the job ledger at the phase level, where the user
sees "N tentativi rimasti" (docs/architecture.md, "Durability").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer

from pacsbridge.settings import JobSettings

log = logging.getLogger(__name__)


class _EmbeddedConsumer(Consumer):
    """A consumer that can run in a non-main thread (no signal handlers)."""

    def _set_signal_handlers(self) -> None:  # pragma: no cover - trivial
        return None


def make_huey(settings: JobSettings, data_dir: Path, name: str = "pacsbridge") -> Huey:
    """The Huey instance for the configured backend."""
    if settings.backend == "redis":
        return RedisHuey(name, url=settings.redis_url, utc=True)
    if settings.backend == "immediate":
        return MemoryHuey(name, immediate=True, utc=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(data_dir / "jobs.db"), utc=True, timeout=30)


class JobQueue:
    """Tasks by name over one Huey instance."""

    def __init__(self, huey: Huey, workers: int = 2) -> None:
        self.huey = huey
        self.workers = workers
        self._tasks: dict[str, Any] = {}
        self._consumer: Consumer | None = None

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        """Make ``fn`` runnable as task ``name`` (a ``ledger.Task``; no Huey-level retries)."""
        self._tasks[str(name)] = self.huey.task(name=str(name), retries=0)(fn)

    def periodic(self, name: str, fn: Callable[[], Any], minutes: float) -> None:
        """Run ``fn`` every ``minutes`` (rounded to whole minutes, at least one)."""
        every = max(1, int(minutes))
        schedule = crontab(minute=f"*/{every}") if every < 60 else crontab(minute="0")
        self._tasks[str(name)] = self.huey.periodic_task(schedule, name=str(name))(fn)

    def enqueue(self, name: str, *args: Any, delay: float | None = None) -> None:
        """Queue task ``name``; with ``delay`` seconds it runs later (durable in storage)."""
        task = self._tasks[str(name)]
        if delay and not self.huey.immediate:
            task.schedule(args=args, delay=timedelta(seconds=delay))
        else:
            task(*args)

    @property
    def names(self) -> set[str]:
        """Every registered task name."""
        return set(self._tasks)

    def depth(self) -> dict[str, int]:
        """Tasks waiting in the queue's storage: ``pending`` now, ``scheduled`` for later.

        Reads the storage (Redis or SQLite), so it also proves the queue answers (/readyz).
        """
        if self.immediate:
            return {"pending": 0, "scheduled": 0}
        return {"pending": self.huey.pending_count(), "scheduled": self.huey.scheduled_count()}

    @property
    def immediate(self) -> bool:
        return bool(self.huey.immediate)

    def start_consumer(self) -> None:
        """Run workers in threads of this process (serve, demo, tests)."""
        if self.immediate or self._consumer is not None:
            return
        consumer = _EmbeddedConsumer(
            self.huey,
            workers=self.workers,
            worker_type="thread",
            periodic=True,
            check_worker_health=False,
            initial_delay=0.05,
            max_delay=0.5,
            backoff=1.5,
        )
        consumer.start()
        self._consumer = consumer

    def stop_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None

    def run_consumer_forever(self) -> None:
        """`pacsbridge worker`: block in the consumer loop (signals handled by Huey)."""
        self.huey.create_consumer(
            workers=self.workers,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            max_delay=0.5,
            backoff=1.5,
        ).run()
