"""The cross-instance lock and its keeper, and the negative cache, on their own.

Both reach Redis only through the cache facade's typed commands (`video_cache.shared`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.cache.errors import CacheBackendError
from app.services.video_cache import VideoCache
from app.video.errors import RecentFailureError
from app.video.locks import LockKeeper, RedisLock
from app.video.negative_cache import FAILED_PREFIX, NegativeCache
from tests.support.redis_server import RedisServer, free_port
from tests.video.conftest import video_settings

NAME = "punchline:video-lock:test"
KEY = "video:" + "cd" * 32
Caches = Callable[[str], VideoCache]


@pytest.fixture
async def caches(tmp_path: Path) -> AsyncIterator[Caches]:
    """Builds started caches (one per "instance"); all are closed at the end."""
    made: list[VideoCache] = []

    def build(url: str) -> VideoCache:
        cache = VideoCache(video_settings(tmp_path / f"instance-{len(made)}", url,
                                          redis_connect_timeout=0.2, redis_socket_timeout=0.5))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.aclose()


async def test_the_lock_is_released_when_the_block_fails(
        caches: Caches, redis_url: str, redis_server: RedisServer) -> None:
    shared = caches(redis_url).shared
    lock = RedisLock(shared, NAME, ttl=30)
    assert await lock.acquire()
    assert not await RedisLock(shared, NAME, ttl=30).acquire()  # held: another token loses
    assert await RedisLock(shared, NAME, ttl=30).is_held()
    with pytest.raises(RuntimeError):
        async with LockKeeper(lock):
            raise RuntimeError("render crashed")
    assert not redis_server.client().exists(NAME)


async def test_a_lost_lock_is_neither_extended_nor_released(
        caches: Caches, redis_url: str, redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    lock = RedisLock(caches(redis_url).shared, NAME, ttl=0.15)
    assert await lock.acquire()
    client = redis_server.client()
    async with LockKeeper(lock):
        # Our lock "expired" and another instance took it over: the keeper must let it be.
        client.set(NAME, "other-instance")
        async with asyncio.timeout(10):
            while "lost the lock" not in caplog.text:
                await asyncio.sleep(0.01)
    assert client.get(NAME) == "other-instance"
    assert client.ttl(NAME) == -1  # never given our TTL again


async def test_the_keeper_extends_the_lock_while_the_block_runs(
        caches: Caches, redis_url: str, redis_server: RedisServer) -> None:
    lock = RedisLock(caches(redis_url).shared, NAME, ttl=0.3)
    assert await lock.acquire()
    extensions: list[int] = []
    async with LockKeeper(lock, on_extend=lambda: extensions.append(1)):
        async with asyncio.timeout(10):
            while len(extensions) < 3:  # well past the TTL: only the keeper holds it
                await asyncio.sleep(0.02)
        assert 0 < redis_server.client().pttl(NAME) <= 300
    assert not redis_server.client().exists(NAME)


async def test_redis_dying_under_a_lock_is_one_error_type_and_never_escapes(
        caches: Caches, own_redis: RedisServer) -> None:
    cache = caches(own_redis.url)
    lock = RedisLock(cache.shared, NAME, ttl=0.3)
    assert await lock.acquire()
    async with LockKeeper(lock):  # the keeper's extensions and the release all fail quietly
        own_redis.stop()
        await asyncio.sleep(0.25)
    with pytest.raises(CacheBackendError):
        await lock.is_held()
    assert not cache.shared.available  # it opened the cache's breaker: no call waits now


async def test_negative_cache_in_process_then_through_redis(
        caches: Caches, redis_url: str, redis_server: RedisServer) -> None:
    now = [100.0]
    first = NegativeCache(10, caches(redis_url).shared, lambda: now[0])
    await first.check(KEY)  # nothing recorded: no error
    await first.remember(KEY, "RenderError: boom")
    with pytest.raises(RecentFailureError, match="boom") as caught:
        await first.check(KEY)
    assert caught.value.retry_after == 10
    assert 0 < redis_server.client().pttl(FAILED_PREFIX + KEY[6:]) <= 10_000
    second = NegativeCache(10, caches(redis_url).shared, lambda: now[0])  # another instance
    with pytest.raises(RecentFailureError, match="boom"):
        await second.check(KEY)
    assert (first.hits, second.hits) == (1, 1)


async def test_negative_cache_without_redis_and_with_ttl_zero(caches: Caches) -> None:
    dead = caches(f"redis://127.0.0.1:{free_port()}").shared
    now = [0.0]
    cache = NegativeCache(5, dead, lambda: now[0])
    await cache.remember(KEY, "boom")  # Redis down: remembered here only, no error
    with pytest.raises(RecentFailureError):
        await cache.check(KEY)
    now[0] = 6.0
    await cache.check(KEY)  # expired
    off = NegativeCache(0, dead, lambda: now[0])
    await off.remember(KEY, "boom")
    await off.check(KEY)
    memory = NegativeCache(5, caches("memory://").shared, lambda: now[0])
    await memory.remember(KEY, "boom")
    with pytest.raises(RecentFailureError):
        await memory.check(KEY)
