"""Running a built Runtime: uvicorn with or without the embedded worker, or a worker alone.

The web server has deadlines a hostile client cannot stretch (slowloris):

- **headers:** uvicorn has no header timeout; :class:`GuardedH11Protocol` closes a connection
  whose request headers are not complete ``web.header_timeout_seconds`` after its first byte
  (or after it opened, when nothing comes at all);
- **header size:** h11 refuses headers over ``MAX_HEADER_BYTES`` (answered 400 and closed);
- **idle keep-alive:** ``web.keep_alive_seconds`` (uvicorn's ``timeout_keep_alive``);
- **body:** a body that stops arriving answers 408 (web/limits.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pacsbridge.runtime import Runtime
from pacsbridge.settings import Settings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, "header_timeout", 10.0)
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._between_requests() and self.header_timer is None:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if not self._between_requests():
            self._disarm()  # headers complete: the request is the app's now

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            log.info("closing a connection whose request headers did not arrive in time")
            self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The product's uvicorn configuration (also used by the tests' live servers)."""
    web = settings.web
    config = uvicorn.Config(
        app,
        host=web.host,
        port=web.port,
        http=GuardedH11Protocol,
        timeout_keep_alive=max(1, round(web.keep_alive_seconds)),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        proxy_headers=bool(web.trusted_proxies),
        forwarded_allow_ips=list(web.trusted_proxies) or None,
        **{"log_level": "info", "access_log": False, **options},
    )
    config.header_timeout = web.header_timeout_seconds  # type: ignore[attr-defined]
    return config


def run(runtime: Runtime, embedded_worker: bool = True) -> None:
    settings = runtime.context.settings
    log.info("configuration: %s", settings.masked())
    if embedded_worker:
        runtime.start_worker()
    try:
        # log_config=None: uvicorn's records go through pacsbridge.logs (docs/logging.md)
        uvicorn.Server(uvicorn_config(runtime.app(), settings, log_config=None)).run()
    finally:
        runtime.close()


def run_worker(runtime: Runtime) -> None:
    log.info("configuration: %s", runtime.context.settings.masked())
    runtime.run_worker_forever()
