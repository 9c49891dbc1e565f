"""Thin job entry points of the import domain, registered on the queue by the runtime."""

from __future__ import annotations

from pacsbridge.context import Context
from pacsbridge.imports import analysis, maintenance
from pacsbridge.imports.pipeline import notify
from pacsbridge.imports.pipeline.runner import run_pipeline
from pacsbridge.jobs.queue import JobQueue


def register(queue: JobQueue, ctx: Context) -> None:
    queue.register("imports.analyse", lambda import_id: analysis.analyse(ctx, import_id))
    queue.register("imports.run_pipeline", lambda import_id: run_pipeline(ctx, import_id))
    queue.register(
        "imports.notify_discontinued",
        lambda import_id, reason: notify.discontinued(ctx, import_id, reason),
    )
    queue.periodic("imports.reap", lambda: maintenance.reap(ctx), minutes=1)
    queue.periodic("imports.clean_up", lambda: maintenance.clean_up(ctx), minutes=15)


def on_start(ctx: Context) -> None:
    """At worker start-up: pick up what a killed worker dropped."""
    maintenance.reap(ctx)
