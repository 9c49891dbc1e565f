"""The composition root: Settings → engine, sessions, queue, peers, Storage SCP, tasks, app.

Everything that is built once per process is built here, in this order, and handed down as one
frozen :class:`~pacsbridge.context.Context`; the domains never build their own services and
never know each other (docs/architecture.md, "Composition root"). The runtime also owns what
runs for the life of the process: the in-process workers and our Storage SCP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import MetaData

from pacsbridge import atna
from pacsbridge.atna.sender import Sender
from pacsbridge.context import Clock, Context, Listener, Network
from pacsbridge.db import migrate
from pacsbridge.db.engine import make_engine, make_sessions
from pacsbridge.imports import tasks as import_tasks
from pacsbridge.jobs.queue import JobQueue, make_huey
from pacsbridge.retrievals import receiver
from pacsbridge.retrievals import tasks as retrieval_tasks
from pacsbridge.settings import Settings
from pacsbridge.web.app import create_app

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    context: Context
    #: delivers the ATNA spool (docs/atna.md); None when ``atna.enabled`` is false
    audit_sender: Sender | None = None

    @property
    def queue(self) -> JobQueue:
        return self.context.queue

    def app(self) -> FastAPI:
        return create_app(self.context)

    def recover(self) -> None:
        """Pick up what a killed worker dropped (Huey delivers at most once)."""
        import_tasks.on_start(self.context)
        retrieval_tasks.on_start(self.context)

    def start_worker(self) -> None:
        """Our Storage SCP (moves must reach us), in-process workers, then recover."""
        self.context.listener.ensure()
        self.queue.start_consumer()
        self._start_audit_sender()
        self.recover()

    def run_worker_forever(self) -> None:
        """``pacsbridge worker``: our Storage SCP, recover, then consume until stopped."""
        self.context.listener.ensure()
        self._start_audit_sender()
        self.recover()
        try:
            self.queue.run_consumer_forever()
        finally:
            self.context.listener.stop()
            if self.audit_sender is not None:
                self.audit_sender.stop()

    def _start_audit_sender(self) -> None:
        if self.audit_sender is not None:
            self.audit_sender.start()

    def close(self) -> None:
        self.queue.stop_consumer()
        self.context.listener.stop()
        if self.audit_sender is not None:
            self.audit_sender.stop()


def metadata() -> MetaData:
    """Every table of every domain: what Alembic compares the migrations with.

    Lives here, in the composition root, so that ``db`` never imports a domain.
    """
    import pacsbridge.atna.outbox  # noqa: F401 - each import registers its tables
    import pacsbridge.audit  # noqa: F401
    import pacsbridge.imports.models  # noqa: F401
    import pacsbridge.retrievals.models  # noqa: F401
    import pacsbridge.staff.models  # noqa: F401
    from pacsbridge.db.base import Base

    return Base.metadata


def build(settings: Settings, clock: Clock | None = None, upgrade: bool = True) -> Runtime:
    """Wire one process; ``upgrade`` applies pending migrations first (serve, demo, tests)."""
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    if upgrade:
        migrate.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    huey = make_huey(settings.jobs, settings.storage.data_dir.resolve())
    context = Context(
        settings=settings,
        sessions=make_sessions(engine),
        queue=JobQueue(huey, workers=settings.jobs.workers),
        network=Network.from_settings(settings),
        listener=Listener(),
        clock=clock or Clock(),
    )
    context.listener.serve_with(lambda: receiver.storage_scp(context))
    import_tasks.register(context.queue, context)
    retrieval_tasks.register(context.queue, context)
    return Runtime(context, atna.install(context.sessions, settings, context.clock))
