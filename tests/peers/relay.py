"""A PACS address that goes away and comes back: a TCP relay on one port of ours.

The product builds its peers once, at start-up (docs/architecture.md, "Composition root"), as
a deployment does: the PACS is at one configured host and port. A test of "the PACS is down,
then up" therefore keeps the address and changes what answers there. ``up(port)`` relays the
address to a running peer; ``down()`` closes it, so a connection is refused exactly as by a
stopped PACS. The relay is the serialising proxy of ``_store_proxy`` (one storage
association at a time, everything else straight through).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers._store_proxy import StoreSerializingProxy
from peers.dicom import free_port


class Relay:
    def __init__(self) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self._proxy: StoreSerializingProxy | None = None

    def up(self, backend_port: int) -> None:
        """Answer on ``self.port`` with the peer listening on ``backend_port``."""
        self.down()
        self._proxy = StoreSerializingProxy(self.host, self.port, backend_port)

    def down(self) -> None:
        """Stop answering: new connections are refused, open ones are closed."""
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A :class:`Relay`, down until the test brings it up; closed after the test."""
    found = Relay()
    yield found
    found.down()
