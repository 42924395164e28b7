"""Fixtures of the end-to-end tests: the real server (`python -m uvicorn app.main:socket_app`)
in a subprocess, on the test session's real redis-server, with the real LocalRenderer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sockets.support import Client
from tests.support.app_server import AppServer, run_app_server

ServerFactory = Callable[..., AppServer]


def server_env(redis_url: str, **overrides: str) -> dict[str, str]:
    """The server's environment: everything real, narration off to keep renders short."""
    return {
        "APP_ENV": "test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_url,
        "VIDEO_PROVIDER": "local",
        "VIDEO_NARRATION": "false",
        "VIDEO_RENDER_WORKERS": "1",
        "PREGEN_ENABLED": "false",
        "RECONNECT_GRACE_SECONDS": "30",
        **overrides,
    }


@pytest.fixture
def app_server(redis_url: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """``app_server(SPECULATIVE_RENDER="false")``: a started real server, stopped after the test."""
    stack: list[Any] = []

    def start(**overrides: str) -> AppServer:
        manager = run_app_server(
            tmp_path / f"server{len(stack)}", server_env(redis_url, **overrides)
        )
        server = manager.__enter__()
        stack.append(manager)
        return server

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Any]]:
    """``await connect(server, "Ada", token=None)``: a connected client, closed after the test."""
    made: list[Client] = []

    async def make(server: AppServer, name: str, token: str | None = None) -> Client:
        client = Client(server.base_url, name)
        await client.connect(token=token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
