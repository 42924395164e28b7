from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from app.core.config import Settings
from tests.sockets.support import Client, FakeVideoService, LiveServer

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def video() -> FakeVideoService:
    return FakeVideoService()


@pytest.fixture
def make_server(video: FakeVideoService) -> Iterator[ServerFactory]:
    servers: list[LiveServer] = []

    def make(
        video_service: Any = video,
        clock: Any = time.monotonic,
        extra_lifespan: Any = None,
        **overrides: Any,
    ) -> LiveServer:
        options = {
            "reconnect_grace_seconds": 30.0,
            "speculative_render": True,
            "redis_url": "memory://",  # per-address limits; tests that need Redis pass it
            **overrides,
        }
        settings = Settings(_env_file=None, app_env="test", **options)
        server = LiveServer(settings, video_service, clock, extra_lifespan)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """``await clients(server, "Ada", "Bo")``: connected clients, closed after the test."""
    made: list[Client] = []

    async def connect(server: LiveServer, *names: str) -> list[Client]:
        out = []
        for name in names:
            client = Client(server.url, name)
            await client.connect()
            made.append(client)
            out.append(client)
        return out

    yield connect
    for client in made:
        await client.close()
