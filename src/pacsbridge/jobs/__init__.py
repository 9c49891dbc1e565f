"""Durable background work: Huey for delivery, our own ledger rows for durability.

Flow: ``queue.JobQueue`` (Huey: SQLite storage embedded, Redis to scale out) → domain modules
register their tasks (``imports.tasks.register``, ``retrievals.tasks.register``) → a consumer
runs them in ``pacsbridge worker`` or inside ``serve``/``demo`` → ``ledger`` leases and the
reaper re-enqueue what a killed worker dropped (Huey delivers at most once).
"""
