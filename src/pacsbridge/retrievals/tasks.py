"""Thin job entry points of the retrieval gateway, registered on the queue by the runtime.

``retrievals.retrieve`` runs one retrieval (``runner.run``); ``retrievals.reap`` re-enqueues
what a killed worker dropped (Huey delivers at most once); ``retrievals.expire`` deletes cache
entries past the retention. ``on_start`` is called by the runtime in every process that runs
workers (serve, demo, worker), after the runtime has started our Storage SCP, and reaps.
"""

from __future__ import annotations

from pacsbridge import logs
from pacsbridge.context import Context
from pacsbridge.jobs import ledger
from pacsbridge.jobs.queue import JobQueue
from pacsbridge.retrievals import cache, lifecycle, runner
from pacsbridge.retrievals.models import Retrieval


def register(queue: JobQueue, ctx: Context) -> None:
    queue.register(runner.TASK, lambda retrieval_id: _run(ctx, retrieval_id))
    queue.periodic(ledger.Task.REAP_RETRIEVALS, lambda: reap(ctx), minutes=1)
    queue.periodic(
        ledger.Task.EXPIRE_CACHE,
        lambda: cache.expire(ctx),
        minutes=ctx.settings.fse.expire_every_minutes,
    )


def _run(ctx: Context, retrieval_id: int) -> None:
    """One retrieval, its log records carrying its id (docs/logging.md)."""
    with logs.bound(retrieval_id=retrieval_id):
        runner.run(ctx, retrieval_id)


def on_start(ctx: Context) -> None:
    """Pick up dropped retrievals (the runtime has started our Storage SCP first)."""
    reap(ctx)


def reap(ctx: Context) -> list[int]:
    """Re-enqueue unfinished retrievals nobody holds, except those waiting for their back-off.

    Always safe: the retrieval's lease lets one run at a time, a finished one ignores its task,
    and one waiting for a study another mover holds only checks and returns.
    """
    return ledger.reap(ctx, ctx.queue, Retrieval, dict.fromkeys(lifecycle.RUNNING, runner.TASK))
