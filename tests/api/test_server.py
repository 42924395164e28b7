"""The real server under uvicorn: the spec's command, and what `make run` starts.

Everything else about the routes is tested in-process (test_routes.py and friends).
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import MAKE_RUN_COMMAND, run_app_server


@pytest.mark.slow
def test_spec_command_serves_with_redis(redis_url: str, tmp_path: Path) -> None:
    with run_app_server(tmp_path, {"REDIS_URL": redis_url}) as server:
        health = httpx.get(f"{server.base_url}/health").json()
        assert health["cache"] == "redis"
        metrics = httpx.get(f"{server.base_url}/metrics").text
        assert "punchline_cache_redis_connected 1.0" in metrics
        missing = httpx.get(f"{server.base_url}/api/rooms/QQQQQ")
        assert missing.json() == {"error": {"code": "room_not_found", "message": "no such room"}}
        # Socket.IO answers on the same port (engine.io polling handshake).
        handshake = httpx.get(f"{server.base_url}/socket.io/", params={"EIO": 4,
                                                                      "transport": "polling"})
        assert handshake.status_code == 200 and '"sid"' in handshake.text
    assert "✅ Connected to Redis for video caching" in server.log


def raw_request(base_url: str, header_bytes: int) -> bytes:
    """GET /health with one header of `header_bytes` bytes; the first bytes of the answer."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * header_bytes}\r\n"
                "Connection: close\r\n\r\n").encode()
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending: read the answer
        return sock.recv(200)


@pytest.mark.slow
def test_make_run_bounds_headers_and_trusts_the_local_proxy(tmp_path: Path) -> None:
    env = {"REDIS_URL": "memory://", "HTTP_RATE_LIMIT_ROOMS": "2/minute",
           "FORWARDED_ALLOW_IPS": "127.0.0.1", "ADMIN_TOKEN": "t0ken",
           "ADMIN_AUTH_FAILURE_LIMIT": "2/minute"}
    with run_app_server(tmp_path, env, command=MAKE_RUN_COMMAND) as server:
        assert raw_request(server.base_url, 60_000).startswith(b"HTTP/1.1 200")
        # Whole in one read: refused by the app's HeaderLimit; too big to buffer: by h11.
        assert raw_request(server.base_url, 70_000).startswith(b"HTTP/1.1 431")
        assert raw_request(server.base_url, 4_000_000).startswith(b"HTTP/1.1 400")
        # Behind the trusted proxy (127.0.0.1), each forwarded client has its own budget.
        url = f"{server.base_url}/api/rooms/QQQQQ"
        first = {"X-Forwarded-For": "203.0.113.7"}
        codes = [httpx.get(url, headers=first).status_code for _ in range(3)]
        assert codes == [404, 404, 429]
        assert httpx.get(url, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 404
        # Admin auth on the wire: raw non-ASCII bytes are a 401, then wrong tokens are slowed.
        entry = f"{server.base_url}/api/cache/entry"
        params = {"black": "b", "white": "w"}
        bad = {"Authorization": "Bearer Äx".encode()}
        codes = [httpx.delete(entry, params=params, headers=bad).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        # Socket.IO refuses a foreign origin (CORS_ORIGINS is empty: same origin only).
        evil = httpx.get(f"{server.base_url}/socket.io/", params={"EIO": 4, "transport": "polling"},
                         headers={"Origin": "https://evil.example"})
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers
