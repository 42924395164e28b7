"""Adaptive batching of concurrent async calls (app/cache/batching.py), on a real redis-server.

Round trips are counted by Redis itself (`INFO commandstats`), not by the code under test. A
round trip is held open with `CLIENT PAUSE`, so "while a call is in flight" is a fact, not a
race.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import ValidationError

from app.cache.batching import Batcher
from app.cache.plans import Set
from app.core.cards import Combination
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory, make_settings
from tests.support.redis_server import RedisServer

URL = "https://cdn.example.com/v/{}.mp4"
GUARD = 10.0  # seconds: turns a hang into a failure, never a timing assertion


def combo(i: int) -> Combination:
    return Combination(f"Black card {i} ___", [f"white {i}"])


def calls(url: str) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, as Redis counted them."""
    with redis.Redis.from_url(url) as client:
        stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


def reset_stats(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.config_resetstat()


def pause_redis(url: str, ms: int) -> None:
    """Hold every client's commands for `ms` milliseconds (a round trip stays in flight)."""
    with redis.Redis.from_url(url) as client:
        client.execute_command("CLIENT", "PAUSE", ms, "ALL")


async def filled(cache_factory: CacheFactory, url: str, n: int, **overrides: Any) -> VideoCache:
    options: dict[str, Any] = {"cache_near_enabled": False, **overrides}
    cache = cache_factory(url, **options)
    await cache.astart()
    for i in range(n):
        await cache.aset(combo(i), URL.format(i))
    return cache


async def test_concurrent_reads_share_one_mget(cache_factory: CacheFactory,
                                               redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 10)
    reset_stats(redis_url)
    urls = await asyncio.gather(*(cache.aget(combo(i)) for i in range(10)))
    assert urls == [URL.format(i) for i in range(10)]
    counted = calls(redis_url)
    # The first call found nothing in flight and went out alone; the nine that arrived while it
    # was in flight travelled together.
    assert counted.get("get") == 1
    assert counted.get("mget") == 1
    await cache.aclose()


async def test_a_lone_call_is_a_plain_get_sent_at_once(cache_factory: CacheFactory,
                                                       redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 3)
    reset_stats(redis_url)
    for i in range(3):  # one after the other: never concurrent
        assert await cache.aget(combo(i)) == URL.format(i)
    counted = calls(redis_url)
    assert counted.get("get") == 3
    assert "mget" not in counted
    batcher = cache._batch()
    assert batcher.round_trips == 0 and batcher._drain is None
    await cache.aclose()


async def test_batching_off_sends_every_call_alone(cache_factory: CacheFactory,
                                                   redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 8, cache_batch_max_keys=0)
    reset_stats(redis_url)
    urls = await asyncio.gather(*(cache.aget(combo(i)) for i in range(8)))
    assert urls == [URL.format(i) for i in range(8)]
    assert calls(redis_url).get("get") == 8
    assert "mget" not in calls(redis_url)
    await cache.aclose()


async def test_batch_size_is_bounded(cache_factory: CacheFactory, redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 10, cache_batch_max_keys=3)
    reset_stats(redis_url)
    urls = await asyncio.gather(*(cache.aget(combo(i)) for i in range(10)))
    assert urls == [URL.format(i) for i in range(10)]
    counted = calls(redis_url)
    assert counted.get("get") == 1
    assert counted.get("mget") == 3  # 9 queued calls, at most 3 keys per MGET
    # A single aget_many larger than the bound goes out alone, in MGETs of at most 3 keys.
    reset_stats(redis_url)
    many = await cache.aget_many([combo(i) for i in range(7)])
    assert many == [URL.format(i) for i in range(7)]
    assert calls(redis_url).get("mget") == 3
    await cache.aclose()


async def test_reads_and_writes_keep_their_order_per_key(cache_factory: CacheFactory,
                                                        redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 0)
    key = combo(1)
    second = URL.format("second")
    await cache.aset(key, URL.format("first"))
    reset_stats(redis_url)
    # The first set goes out alone; the rest arrive while it is in flight and share one
    # pipeline, in which Redis must see: read, write, read.
    _, before, _, after = await asyncio.gather(
        cache.aset(key, URL.format("zero")), cache.aget(key), cache.aset(key, second),
        cache.aget(key))
    assert (before, after) == (URL.format("zero"), second)
    assert calls(redis_url).get("set") == 2
    await cache.aclose()


async def test_aget_many_joins_the_batch(cache_factory: CacheFactory, redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 6)
    reset_stats(redis_url)
    one, many, missing = await asyncio.gather(
        cache.aget(combo(0)), cache.aget_many([combo(i) for i in range(1, 6)]),
        cache.aget_entry(Combination("nobody ___", ["nothing"])))
    assert one == URL.format(0)
    assert many == [URL.format(i) for i in range(1, 6)]
    assert missing is None
    assert calls(redis_url).get("mget") == 1
    await cache.aclose()


# --- one caller must never break its batch-mates ---------------------------------------------
async def test_a_cancelled_leader_hands_its_queue_on(cache_factory: CacheFactory,
                                                     redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 5, redis_socket_timeout=5.0)
    pause_redis(redis_url, 300)
    leader = asyncio.create_task(cache.aget(combo(0)))
    await asyncio.sleep(0.05)  # the leader's GET is now held by the paused server
    mates = [asyncio.create_task(cache.aget(combo(i))) for i in range(1, 5)]
    await asyncio.sleep(0)
    assert not leader.done()
    leader.cancel()
    urls = await asyncio.wait_for(asyncio.gather(*mates), GUARD)
    assert urls == [URL.format(i) for i in range(1, 5)]
    with pytest.raises(asyncio.CancelledError):
        await leader
    # The batcher is idle again: the next lone call goes out at once.
    assert await cache.aget(combo(0)) == URL.format(0)
    await cache.aclose()


async def test_a_cancelled_batch_mate_is_skipped(cache_factory: CacheFactory,
                                                 redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 5, redis_socket_timeout=5.0)
    pause_redis(redis_url, 300)
    leader = asyncio.create_task(cache.aget(combo(0)))
    await asyncio.sleep(0.05)
    mates = [asyncio.create_task(cache.aget(combo(i))) for i in range(1, 5)]
    await asyncio.sleep(0)
    mates[1].cancel()
    results = await asyncio.wait_for(
        asyncio.gather(leader, *mates, return_exceptions=True), GUARD)
    assert results[0] == URL.format(0)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [results[1], results[3], results[4]] == [URL.format(i) for i in (1, 3, 4)]
    await cache.aclose()


async def test_a_failing_write_fails_alone(own_redis: RedisServer) -> None:
    """A command refused by Redis (NOPERM here) fails its own caller; batch-mates get theirs."""
    admin = own_redis.client()
    admin.set("ok:1", "one")
    admin.set("ok:2", "two")
    admin.execute_command("ACL", "SETUSER", "limited", "on", ">pw", "~ok:*", "+@all")
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port, username="limited",
                            password="pw", socket_timeout=5)
    batcher = Batcher(lambda: client, 100)
    admin.execute_command("CLIENT", "PAUSE", 300, "ALL")
    leader = asyncio.create_task(batcher.get("ok:1"))
    await asyncio.sleep(0.05)
    results = await asyncio.wait_for(asyncio.gather(
        leader, batcher.get("ok:1"), batcher.command(Set("denied:1", "x")),
        batcher.command(Set("ok:3", "three")), batcher.mget(["ok:2", "ok:3"]),
        return_exceptions=True), GUARD)
    assert results[0] == results[1] == b"one"
    assert isinstance(results[2], redis.exceptions.NoPermissionError)
    assert results[3] is True
    assert results[4] == [b"two", b"three"]
    assert batcher.round_trips == 1
    await client.aclose()
    admin.close()


async def test_a_corrupt_entry_fails_alone(cache_factory: CacheFactory, redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 4)
    with redis.Redis.from_url(redis_url) as raw:
        raw.set(combo(2).key, b"not json")
        raw.delete(combo(3).key)
        raw.rpush(combo(3).key, b"a list")
    urls = await asyncio.gather(*(cache.aget(combo(i)) for i in range(4)))
    assert urls == [URL.format(0), URL.format(1), None, None]
    assert cache.core.counters.corrupt == 1  # the list reads as nil through MGET: a miss
    assert cache.core.redis_usable
    await cache.aclose()


# --- semantics of the cache around a batch ----------------------------------------------------
async def test_an_invalidation_during_a_batched_read_leaves_the_copy_stale(
        cache_factory: CacheFactory, redis_url: str) -> None:
    cache = await filled(cache_factory, redis_url, 2, redis_socket_timeout=5.0)
    cache.core.memory.mark_all_stale()
    pause_redis(redis_url, 200)
    leader = asyncio.create_task(cache.aget(combo(0)))
    await asyncio.sleep(0.05)
    mate = asyncio.create_task(cache.aget(combo(1)))
    await asyncio.sleep(0)
    cache.core.invalidation_epoch += 1  # what the listener does when a key changes
    assert await asyncio.wait_for(mate, GUARD) == URL.format(1)
    await leader
    # The value was read before the invalidation: it must not be served as fresh.
    assert cache.core.memory.get_fresh(combo(1).key) is None
    await cache.aclose()


async def test_an_outage_sends_every_queued_call_to_memory(cache_factory: CacheFactory,
                                                           own_redis: RedisServer) -> None:
    cache = await filled(cache_factory, own_redis.url, 5)
    own_redis.stop()
    urls = await asyncio.wait_for(
        asyncio.gather(*(cache.aget(combo(i)) for i in range(5))), GUARD)
    assert urls == [URL.format(i) for i in range(5)]  # served from memory, per call
    assert cache.core.counters.fallbacks >= 5
    # Writes made meanwhile are journaled, each on its own.
    await asyncio.wait_for(asyncio.gather(
        *(cache.aset(combo(i), URL.format(f"new{i}")) for i in range(10, 15))), GUARD)
    assert cache.core.pending_writes == 5
    assert len(cache.core.journal.pending()) == 5
    await cache.aclose()


async def test_concurrent_writes_during_an_outage_are_journaled(
        cache_factory: CacheFactory, own_redis: RedisServer) -> None:
    """The first write of the batch meets the dead server; its batch-mates never wait."""
    cache = await filled(cache_factory, own_redis.url, 0)
    await cache.aget(combo(0))
    own_redis.stop()
    await asyncio.wait_for(asyncio.gather(
        *(cache.aset(combo(i), URL.format(i)) for i in range(6))), GUARD)
    assert not cache.core.redis_usable
    assert cache.core.pending_writes == 6
    assert [await cache.aget(combo(i)) for i in range(6)] == [URL.format(i) for i in range(6)]
    await cache.aclose()


def test_the_sync_api_is_not_batched(cache_factory: CacheFactory, redis_url: str) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    cache.set("Black ___", ["white"], URL.format(0))
    reset_stats(redis_url)
    assert cache.get("Black ___", ["white"]) == URL.format(0)
    assert calls(redis_url).get("get") == 1


def test_bad_batch_sizes_are_refused(tmp_path: Any) -> None:
    with pytest.raises(ValidationError):
        make_settings(tmp_path, "memory://", cache_batch_max_keys=-1)
    with pytest.raises(ValueError, match="max_keys"):
        Batcher(lambda: aioredis.Redis(), -1)
