"""Fixtures building isolated VideoCache instances over a real Redis or memory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.sockets.manager import GameRedisManager

CacheFactory = Callable[..., VideoCache]


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"data_dir": tmp_path / "data", **overrides}
    return Settings(_env_file=None, redis_url=redis_url, **options)


@pytest.fixture
def cache_factory(tmp_path: Path) -> Iterator[CacheFactory]:
    made: list[VideoCache] = []

    def build(redis_url: str, **overrides: Any) -> VideoCache:
        cache = VideoCache(make_settings(tmp_path, redis_url, **overrides))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


@pytest.fixture(params=["redis", "memory"])
def backend_url(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs against both stores."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return "memory://"


@pytest.fixture
def cache(cache_factory: CacheFactory, backend_url: str) -> VideoCache:
    return cache_factory(backend_url)


async def assert_publish_reaches(manager: GameRedisManager, subscriber: aioredis.Redis,
                                 channel: str) -> None:
    """An emit the Socket.IO manager publishes reaches `subscriber` (on any server of the same
    Pub/Sub); then the manager and the subscriber are closed."""
    pubsub = subscriber.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await manager._publish({"method": "emit", "event": "hello"})
    assert manager._sender is not None
    await manager._sender
    assert not manager._failing
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            break
    assert message is not None and json.loads(message["data"])["event"] == "hello"
    await pubsub.aclose()
    await subscriber.aclose()
    await manager.aclose()
