"""Session-wide fixtures: a real redis-server on a free port, and clean settings per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's own redis-server. Never the one on 6379."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the session redis-server, emptied before each test."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    yield redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, for tests that stop, freeze or restart it."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()
