"""What a hostile client can't do: too many connections from one address, or a flood of
malformed packets. Pure bookkeeping; the server decides what to send and whom to close.

Behind a proxy every client arrives from the proxy's address unless uvicorn is told to trust its
``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``); uvicorn then rewrites the ASGI scope's ``client``,
which is what ``client_address`` reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MALFORMED_WINDOW = 60.0  # seconds: one log line per connection per window
MALFORMED_LIMIT = 20  # malformed packets in one window before the connection is closed


def client_address(environ: Mapping[str, Any] | None) -> str:
    """The peer's address from the ASGI scope (engineio's REMOTE_ADDR is a constant)."""
    scope = environ.get("asgi.scope") if environ is not None else None
    client = scope.get("client") if isinstance(scope, Mapping) else None
    if client:
        return str(client[0])
    return "unknown"


class ConnectionCounts:
    """Open connections per address: a count, not a rate. Local to this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, address: str) -> bool:
        """Count one more connection from ``address``; False (and nothing counted) when full."""
        n = self._open.get(address, 0)
        if n >= self.limit:
            return False
        self._open[address] = n + 1
        return True

    def close(self, address: str) -> None:
        n = self._open.get(address, 0) - 1
        if n > 0:
            self._open[address] = n
        else:
            self._open.pop(address, None)

    def count(self, address: str) -> int:
        return self._open.get(address, 0)


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0
    closing: bool = False  # the close line was written; later packets are counted silently


@dataclass(frozen=True, slots=True)
class Verdict:
    log: bool  # the first of a window: write one line now
    previous: int  # malformed packets in the window before, for that line
    count: int  # malformed packets in this window so far
    close: bool  # the connection keeps sending them: close it


class MalformedPackets:
    """Malformed packets per Engine.IO connection, in windows of ``MALFORMED_WINDOW`` s.

    The caller logs one line per window (with the count of the window before) and closes the
    connection once a window holds ``limit`` packets; ``forget`` returns the count not yet
    logged, for a last line when the connection goes away.
    """

    def __init__(
        self,
        limit: int = MALFORMED_LIMIT,
        window: float = MALFORMED_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._by_conn: dict[str, _Window] = {}

    def record(self, conn: str) -> Verdict:
        now = self._clock()
        w = self._by_conn.get(conn)
        previous = 0
        if w is None or now - w.started >= self.window:
            previous = w.count if w is not None else 0
            w = self._by_conn[conn] = _Window(now)
        w.count += 1
        close = w.count >= self.limit and not w.closing
        w.closing = w.closing or close
        return Verdict(log=w.count == 1, previous=previous, count=w.count, close=close)

    def forget(self, conn: str) -> int:
        """Stop tracking ``conn``; how many packets of its last window no line has counted."""
        w = self._by_conn.pop(conn, None)
        return w.count - 1 if w is not None and not w.closing else 0
