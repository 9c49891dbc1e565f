"""Running a built Runtime: uvicorn with or without the embedded worker, or a worker alone."""

from __future__ import annotations

import logging

import uvicorn

from pacsbridge.runtime import Runtime

log = logging.getLogger(__name__)


def run(runtime: Runtime, embedded_worker: bool = True) -> None:
    settings = runtime.context.settings
    log.info("configuration: %s", settings.masked())
    if embedded_worker:
        runtime.start_worker()
    try:
        uvicorn.run(
            runtime.app(),
            host=settings.web.host,
            port=settings.web.port,
            log_level="info",
            access_log=False,
        )
    finally:
        runtime.close()


def run_worker(runtime: Runtime) -> None:
    log.info("configuration: %s", runtime.context.settings.masked())
    runtime.recover()
    runtime.queue.run_consumer_forever()
