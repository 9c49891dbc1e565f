"""Durable background work: Huey for delivery, our own ledger rows for durability.

Flow: ``queue.JobQueue`` (Huey: SQLite storage embedded, Redis to scale out) → domain modules
register their tasks under ``ledger.Task`` names (``imports.tasks.register``,
``retrievals.tasks.register``) → a consumer runs them in ``pacsbridge worker`` or inside
``serve``/``demo`` → each task body runs under ``ledger.held`` (compare-and-set lease, a
heartbeat thread, release) → ``ledger.reap`` re-enqueues what a killed worker dropped (Huey
delivers at most once), and ``ledger.retry_at`` spaces the retries.
"""
