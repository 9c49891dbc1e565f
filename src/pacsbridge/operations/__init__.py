"""Running the product: is this node ready, and what is it doing (docs/operations.md).

Flow: ``readiness`` (database, queue, disk, C-ECHO to the PACS and each source, in parallel,
one answer per few seconds) → ``exposition`` (the process counters of ``pacsbridge.metrics``,
summed over processes in multiprocess mode, plus gauges read from the database at scrape time).
The routes are in ``web/health.py``.
"""
