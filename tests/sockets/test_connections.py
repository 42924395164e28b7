"""The open-connection count per address in a real Redis, shared by several counters (instances),
and its fallback to this process's memory. The wire test with two servers is
tests/e2e/test_abuse.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.sockets.connections import ConnectionCounter, key_for
from tests.support.redis_server import RedisServer

CacheFactory = Callable[[str], VideoCache]


@pytest.fixture
def cache_factory(tmp_path: Path) -> Iterator[CacheFactory]:
    """Isolated cache facades; their `shared` is what the game server counts with."""
    made: list[VideoCache] = []

    def build(redis_url: str) -> VideoCache:
        cache = VideoCache(Settings(_env_file=None, redis_url=redis_url,
                                    data_dir=tmp_path / "data"))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


async def test_instances_share_one_count_and_a_dead_one_expires(
    cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer
) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()
    a = ConnectionCounter(limit=3, ttl=0.6, shared=lambda: cache.shared)
    b = ConnectionCounter(limit=3, ttl=0.6, shared=lambda: cache.shared)
    try:
        assert await a.open("s1", "10.0.0.1") and await a.open("s2", "10.0.0.1")
        assert await b.open("s3", "10.0.0.1")
        assert not await a.open("s4", "10.0.0.1") and not await b.open("s4", "10.0.0.1")
        assert await b.open("s5", "10.0.0.2")  # another address has its own count
        client = redis_server.client()
        key = key_for("10.0.0.1")
        assert client.zcard(key) == 3 and 0 < client.pttl(key) <= 600
        assert not any("10.0.0.1" in str(k) for k in client.keys("*"))  # hashed, no address
        await b.close("s3")
        assert await a.open("s6", "10.0.0.1")  # freed across instances
        # a stops beating (killed): its two members stop counting after the TTL; b beats on
        for _ in range(4):
            await asyncio.sleep(0.25)
            await b.heartbeat()
        assert await b.open("s7", "10.0.0.1") and await b.open("s8", "10.0.0.1")
        assert client.zcard(key) == 2
        await b.aclose()
        assert client.zcard(key) == 0
    finally:
        await cache.aclose()


async def test_the_heartbeat_writes_connections_back_after_redis_lost_them(
    cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer
) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()
    a = ConnectionCounter(limit=2, ttl=30, shared=lambda: cache.shared)
    b = ConnectionCounter(limit=2, ttl=30, shared=lambda: cache.shared)
    try:
        assert await a.open("s1", "h") and await a.open("s2", "h")
        redis_server.client().flushall()  # Redis restarted empty
        await a.heartbeat(force=True)
        assert not await b.open("s3", "h")
    finally:
        await cache.aclose()


async def test_a_closed_connection_is_not_brought_back_by_a_racing_beat(
    cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer
) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()
    alive = {"s1", "s2"}
    a = ConnectionCounter(limit=5, ttl=30, shared=lambda: cache.shared,
                          alive=lambda sid: sid in alive)
    try:
        assert await a.open("s1", "h") and await a.open("s2", "h")
        beat = asyncio.create_task(a.heartbeat(force=True))
        await a.close("s1")
        await beat
        alive.discard("s2")  # gone without a disconnect
        await a.heartbeat(force=True)
        assert redis_server.client().zcard(key_for("h")) == 0 and a.count("h") == 0
    finally:
        await cache.aclose()


async def test_during_an_outage_each_process_counts_its_own(
    cache_factory: CacheFactory, own_redis: RedisServer
) -> None:
    cache = cache_factory(own_redis.url)
    await cache.astart()
    a = ConnectionCounter(limit=2, ttl=30, shared=lambda: cache.shared)
    try:
        assert await a.open("s1", "h")
        own_redis.stop()
        assert await a.open("s2", "h")  # Redis failed: counted here, no error
        assert not cache.shared.available
        assert not await a.open("s3", "h")  # the local count holds the limit
        await a.close("s1")
        await a.heartbeat(force=True)  # no Redis: nothing to do, no error
        assert a.count("h") == 1
    finally:
        await cache.aclose()


async def test_memory_only_counts_in_this_process(cache_factory: CacheFactory) -> None:
    cache = cache_factory("memory://")
    a = ConnectionCounter(limit=1, ttl=30, shared=lambda: cache.shared)
    assert await a.open("s1", "h") and not await a.open("s2", "h")


def test_the_key_holds_no_address() -> None:
    key = key_for("203.0.113.9")
    assert key.startswith("punchline:conn:") and "203.0.113.9" not in key
    assert key == key_for("203.0.113.9") != key_for("203.0.113.10")
