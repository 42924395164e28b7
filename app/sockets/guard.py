"""Client addresses (the count of open connections per address is in ``connections.py``).

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

