"""The cross-instance lock and its keeper, and the negative cache, on their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from app.video.errors import RecentFailureError
from app.video.locks import LockKeeper, RedisLock
from app.video.negative_cache import FAILED_PREFIX, NegativeCache
from tests.support.redis_server import free_port

NAME = "punchline:video-lock:test"
KEY = "video:" + "cd" * 32


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_the_lock_is_released_when_the_block_fails(client: aioredis.Redis) -> None:
    lock = RedisLock(client, NAME, ttl=30)
    assert await lock.acquire()
    assert not await RedisLock(client, NAME, ttl=30).acquire()  # held: another token loses
    with pytest.raises(RuntimeError):
        async with LockKeeper(lock):
            raise RuntimeError("render crashed")
    assert not await client.exists(NAME)


async def test_a_lost_lock_is_neither_extended_nor_released(
        client: aioredis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    lock = RedisLock(client, NAME, ttl=0.15)
    assert await lock.acquire()
    async with LockKeeper(lock):
        # Our lock "expired" and another instance took it over: the keeper must let it be.
        await client.set(NAME, "other-instance")
        async with asyncio.timeout(10):
            while "lost the generation lock" not in caplog.text:
                await asyncio.sleep(0.01)
    assert await client.get(NAME) == b"other-instance"
    assert await client.ttl(NAME) == -1  # never given our TTL again


async def test_negative_cache_in_process_then_through_redis(client: aioredis.Redis) -> None:
    now = [100.0]
    first = NegativeCache(10, lambda: client, lambda: now[0])
    await first.remember(KEY, "RenderError: boom")
    with pytest.raises(RecentFailureError, match="boom") as caught:
        await first.check(KEY)
    assert caught.value.retry_after == 10
    assert 0 < await client.pttl(FAILED_PREFIX + KEY[6:]) <= 10_000
    second = NegativeCache(10, lambda: client, lambda: now[0])  # another instance
    with pytest.raises(RecentFailureError, match="boom"):
        await second.check(KEY)
    assert (first.hits, second.hits) == (1, 1)


async def test_negative_cache_without_redis_and_with_ttl_zero() -> None:
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=0.2)
    now = [0.0]
    cache = NegativeCache(5, lambda: dead, lambda: now[0])
    await cache.remember(KEY, "boom")  # Redis down: remembered here only, no error
    with pytest.raises(RecentFailureError):
        await cache.check(KEY)
    now[0] = 6.0
    await cache.check(KEY)  # expired
    off = NegativeCache(0, lambda: dead, lambda: now[0])
    await off.remember(KEY, "boom")
    await off.check(KEY)
    await dead.aclose()
