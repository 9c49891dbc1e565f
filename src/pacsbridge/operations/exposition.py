"""What ``/metrics`` answers: the process counters plus what the database and the disk know.

Counters and histograms (``pacsbridge.metrics``) live in each process. With one process they
are read from prometheus-client's default registry; with several on one host (``serve`` plus
``worker`` processes), ``PROMETHEUS_MULTIPROC_DIR`` is set in every process's environment and
the answer sums each process's files (prometheus-client's multiprocess mode; docs/operations.md).

Gauges that describe shared state (imports and retrievals by state, the cache, the queue's
depth, the disk) are read at scrape time by :class:`StateCollector`, not kept per process: every
node answers the same numbers, and nothing goes stale when a process dies.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from pacsbridge.context import Context
from pacsbridge.imports.lifecycle import ImportState
from pacsbridge.imports.models import Import
from pacsbridge.retrievals.lifecycle import RetrievalState
from pacsbridge.retrievals.models import CachedStudy, Retrieval

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


def render(ctx: Context) -> bytes:
    """The text exposition format of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    folder = multiprocess_dir()
    if folder:
        MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_ThisProcess())
    registry.register(StateCollector(ctx))
    return generate_latest(registry)


class _ThisProcess:
    """The default registry (our instruments, process and Python metrics) of this process."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class StateCollector:
    """Gauges read from the database, the queue and the disk at each scrape."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pacsbridge_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            yield from self._from_database()
            up.add_metric([], 1)
        except SQLAlchemyError:
            log.warning("metrics: the database did not answer")
            up.add_metric([], 0)
        yield up
        yield from self._queue()
        yield from self._disk()

    def _from_database(self) -> Iterator[Metric]:
        with self.ctx.sessions() as session:
            imports = session.execute(select(Import.state, func.count()).group_by(Import.state))
            retrievals = session.execute(
                select(Retrieval.state, func.count()).group_by(Retrieval.state)
            )
            live = CachedStudy.live_key.is_not(None)
            studies, size = session.execute(
                select(func.count(), func.coalesce(func.sum(CachedStudy.size_bytes), 0)).where(live)
            ).one()
            yield _by_state("pacsbridge_imports", "Imports by state.", ImportState, imports)
            yield _by_state(
                "pacsbridge_retrievals", "Retrievals by state.", RetrievalState, retrievals
            )
        yield GaugeMetricFamily(
            "pacsbridge_cache_studies", "Studies in the retrieval cache (live).", value=studies
        )
        yield GaugeMetricFamily(
            "pacsbridge_cache_bytes", "Bytes of the studies in the retrieval cache.", value=size
        )

    def _queue(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "pacsbridge_queue_depth", "Tasks waiting in the job queue.", labels=["kind"]
        )
        try:
            for kind, count in self.ctx.queue.depth().items():
                family.add_metric([kind], count)
        except Exception:  # noqa: BLE001 - Redis or SQLite down: no sample, not a 500
            log.warning("metrics: the job queue did not answer")
        yield family

    def _disk(self) -> Iterator[Metric]:
        usage = shutil.disk_usage(self.ctx.data_dir)
        family = GaugeMetricFamily(
            "pacsbridge_data_disk_bytes",
            "The data folder's file system: total, used and free bytes.",
            labels=["kind"],
        )
        for kind in ("total", "used", "free"):
            family.add_metric([kind], getattr(usage, kind))
        yield family


def _by_state(
    name: str, documentation: str, states: Iterable[str], rows: Iterable[Any]
) -> GaugeMetricFamily:
    """Every known state, 0 when none is in it (alerts compare with 0, not with absent)."""
    counts = {str(state): 0 for state in states} | {state: count for state, count in rows}
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state, count in counts.items():
        family.add_metric([state], count)
    return family
