"""A bound on the size of a request head, in front of every route (REST and Socket.IO).

uvicorn's h11 parser (`python -m app.main`, `make run`) stops buffering an *incomplete* head
past HTTP_MAX_HEADER_BYTES, which bounds memory against a 50 MB header. A head that arrives
whole in one read (up to 256 KiB with asyncio) gets past that check, so this middleware applies
the exact limit: 431 in the one error shape. It is the only bound under httptools (the spec's
plain `python -m uvicorn` command), where the parser itself has none.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


def head_size(scope: Scope) -> int:
    """Bytes of the request line and headers, as on the wire (near enough)."""
    size = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(
        scope.get("query_string", b"")) + 16
    for name, value in scope.get("headers", ()):
        size += len(name) + len(value) + 4
    return size


class HeaderLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"} and head_size(scope) > self.max_bytes:
            if scope["type"] == "websocket":  # before accept: uvicorn answers 403
                await send({"type": "websocket.close", "code": 1009})
                return
            body = json.dumps({"error": {"code": "header_too_large", "message":
                               f"request headers exceed {self.max_bytes} bytes"}}).encode()
            await send({"type": "http.response.start", "status": 431, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
