"""Client addresses, and the count of open connections per address. Pure bookkeeping; the
server decides what to send and whom to close.

Behind a proxy every client arrives from the proxy's address unless uvicorn is told to trust its
``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``); uvicorn then rewrites the ASGI scope's ``client``,
which is what ``client_address`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
