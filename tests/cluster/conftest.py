"""Several real instances (`python -m uvicorn app.main:socket_app` processes) on one real
redis-server, each with its own port: the multi-instance behaviour, never simulated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import server_env
from tests.sockets.support import Client
from tests.support.app_server import AppServer, run_app_server

Instances = Callable[..., list[AppServer]]


@pytest.fixture
def instances(redis_url: str, tmp_path: Path) -> Iterator[Instances]:
    """``instances(2, redis=None, **env)``: N started instances sharing the session's Redis (or
    ``redis``) and a channel of their own."""
    stack: list[Any] = []
    channel = f"test-{uuid.uuid4().hex[:8]}"

    def start(n: int, redis: str | None = None, **overrides: str) -> list[AppServer]:
        env = server_env(redis or redis_url, SOCKETIO_CHANNEL=channel, INSTANCE_TTL_SECONDS="2",
                         SPECULATIVE_RENDER="false", **overrides)
        started = []
        for _ in range(n):
            manager = run_app_server(tmp_path / f"instance{len(stack)}", env)
            started.append(manager.__enter__())
            stack.append(manager)
        return started

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
async def player() -> AsyncIterator[Callable[..., Any]]:
    """``await player(server, "Ada", token=None)``: a connected client, closed after the test."""
    made: list[Client] = []

    async def make(server: AppServer, name: str, token: str | None = None) -> Client:
        client = Client(server.base_url, name)
        await client.connect(token=token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
