"""A real uvicorn server in a thread of the test process, on a free port of 127.0.0.1.

In-process so a test can reach the runtime behind the pages (its Context: database, clock,
data folder) while Chromium talks to it over real HTTP/1.1, as a hospital browser would.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

from pacsbridge import runtime
from pacsbridge.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    settings: Settings
    rt: runtime.Runtime | None = None
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.settings.public_url

    @property
    def context(self):  # noqa: ANN201 - pacsbridge.context.Context
        assert self.rt is not None
        return self.rt.context

    def start(self, clock=None, timeout: float = 20) -> LiveServer:  # noqa: ANN001
        self.rt = runtime.build(self.settings, clock=clock)
        config = uvicorn.Config(
            self.rt.app(),
            host=self.settings.web.host,
            port=self.settings.web.port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.02)  # polling a starting thread, not waiting for readiness
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.rt is not None:
            self.rt.close()
