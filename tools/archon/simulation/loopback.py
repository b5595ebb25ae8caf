"""A threaded HTTP server on 127.0.0.1 for the simulations: started in a daemon thread, stopped
within one poll interval."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self

LOOPBACK = "127.0.0.1"
POLL_INTERVAL_S = 0.05  # shutdown() waits up to one poll interval


class LoopbackServer:
    """Serves `server` in a thread of its own; `url` is its base URL. The simulations are
    subclasses."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=name,
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
