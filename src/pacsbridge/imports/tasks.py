"""Thin job entry points of the import domain, registered on the queue by the runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pacsbridge import logs
from pacsbridge.context import Context
from pacsbridge.imports import analysis, maintenance
from pacsbridge.imports.pipeline import notify
from pacsbridge.imports.pipeline.runner import run_pipeline
from pacsbridge.jobs.ledger import Task
from pacsbridge.jobs.queue import JobQueue


def register(queue: JobQueue, ctx: Context) -> None:
    queue.register(Task.ANALYSE, _about(lambda import_id: analysis.analyse(ctx, import_id)))
    queue.register(Task.RUN_PIPELINE, _about(lambda import_id: run_pipeline(ctx, import_id)))
    queue.register(
        Task.NOTIFY_DISCONTINUED,
        _about(lambda import_id, reason: notify.discontinued(ctx, import_id, reason)),
    )
    queue.periodic(Task.REAP_IMPORTS, lambda: maintenance.reap(ctx), minutes=1)
    queue.periodic(Task.CLEAN_UP_IMPORTS, lambda: maintenance.clean_up(ctx), minutes=15)
    every = ctx.settings.storage.sweep_every_minutes
    queue.periodic(Task.SWEEP_IMPORTS, lambda: maintenance.sweep(ctx), minutes=every)


def _about(task: Callable[..., Any]) -> Callable[..., Any]:
    """The task's log records carry the import id, its first argument (docs/logging.md)."""

    def run(import_id: int, *args: Any) -> Any:
        with logs.bound(import_id=import_id):
            return task(import_id, *args)

    return run


def on_start(ctx: Context) -> None:
    """At worker start-up: pick up what a killed worker dropped; remove orphaned folders."""
    maintenance.reap(ctx)
    maintenance.sweep(ctx)
