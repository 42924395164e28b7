"""The near cache: memory-speed repeat reads, invalidated across instances by Redis tracking."""

from __future__ import annotations

from pathlib import Path

from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory
from tests.cache.test_redis_integration import run_python
from tests.cache.test_resilience import wait_until
from tests.support.redis_server import RedisServer


def command_calls(server: RedisServer, command: str) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def near_ready(cache: VideoCache) -> bool:
    return cache.core.near_live


def is_near_cached(cache: VideoCache, black: str, whites: list[str]) -> bool:
    """Read once (filling the near cache), then tell whether the entry is a fresh near hit.

    Our own write's invalidation can arrive after the first fill, so callers poll this.
    """
    cache.get(black, whites)
    return cache.core.memory.get(cache.key_for(black, whites), fresh_only=True) is not None


def test_repeat_reads_do_not_reach_redis(cache_factory: CacheFactory, redis_url: str,
                                         redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    cache.set("hot", ["combo"], "/videos/hot.mp4")
    wait_until(lambda: near_ready(cache))
    wait_until(lambda: is_near_cached(cache, "hot", ["combo"]))
    before = command_calls(redis_server, "get")
    for _ in range(100):
        assert cache.get("hot", ["combo"]) == "/videos/hot.mp4"
    assert command_calls(redis_server, "get") == before
    assert cache.get_stats()["near_hits"] >= 100


def test_near_cache_off_reads_redis_every_time(cache_factory: CacheFactory, redis_url: str,
                                               redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    cache.set("hot", ["combo"], "/videos/hot.mp4")
    before = command_calls(redis_server, "get")
    for _ in range(10):
        assert cache.get("hot", ["combo"]) == "/videos/hot.mp4"
    assert command_calls(redis_server, "get") == before + 10
    assert cache.get_stats()["near_hits"] == 0


def test_overwrite_by_another_process_is_seen(cache_factory: CacheFactory, redis_url: str,
                                              tmp_path: Path) -> None:
    cache = cache_factory(redis_url)
    cache.set("shared", ["hot"], "/videos/v1.mp4")
    wait_until(lambda: near_ready(cache))
    assert cache.get("shared", ["hot"]) == "/videos/v1.mp4"
    assert cache.get("shared", ["hot"]) == "/videos/v1.mp4"
    hits = cache.get_stats()["near_hits"]
    assert hits >= 1
    run_python("""
        from app.services.video_cache import video_cache
        video_cache.set("shared", ["hot"], "/videos/v2.mp4")
    """, redis_url, tmp_path / "writer")
    wait_until(lambda: cache.get("shared", ["hot"]) == "/videos/v2.mp4", deadline=5)
    run_python("""
        from app.services.video_cache import video_cache
        video_cache.delete("shared", ["hot"])
    """, redis_url, tmp_path / "writer")
    wait_until(lambda: cache.get("shared", ["hot"]) is None, deadline=5)


def test_out_of_band_delete_invalidates(cache_factory: CacheFactory, redis_url: str,
                                        redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    cache.set("oob", ["delete"], "/videos/oob.mp4", permanent=True)
    wait_until(lambda: near_ready(cache))
    cache.get("oob", ["delete"])
    assert cache.get("oob", ["delete"]) == "/videos/oob.mp4"
    redis_server.client().flushdb()  # like an operator running redis-cli FLUSHDB
    wait_until(lambda: cache.get("oob", ["delete"]) is None, deadline=5)


def test_near_cache_serves_during_outage_and_is_flushed_after(
        cache_factory: CacheFactory, own_redis: RedisServer, tmp_path: Path) -> None:
    cache = cache_factory(own_redis.url)
    cache.set("outage", ["hot"], "/videos/v1.mp4")
    wait_until(lambda: near_ready(cache))
    assert cache.get("outage", ["hot"]) == "/videos/v1.mp4"
    own_redis.stop()
    assert cache.get("outage", ["hot"]) == "/videos/v1.mp4"
    wait_until(lambda: not near_ready(cache))
    assert cache.get("outage", ["hot"]) == "/videos/v1.mp4"  # memory keeps serving
    own_redis.start()
    # Another instance writes while this one has not reconnected yet: its invalidation is
    # lost, so only the flush on reconnect keeps this instance from serving v1 forever.
    other = cache_factory(own_redis.url, data_dir=tmp_path / "other")
    other.set("outage", ["hot"], "/videos/v2.mp4")
    wait_until(lambda: cache.core.redis_usable)
    wait_until(lambda: cache.get("outage", ["hot"]) == "/videos/v2.mp4", deadline=5)


def test_get_many_is_one_mget(cache_factory: CacheFactory, redis_url: str,
                              redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    combos = [(f"black {i}", [f"white {i}"]) for i in range(100)]
    for black, whites in combos[::2]:
        cache.set(black, whites, f"/videos/{black.split()[1]}.mp4")
    mget_before = command_calls(redis_server, "mget")
    get_before = command_calls(redis_server, "get")
    results = cache.get_many(combos)
    assert command_calls(redis_server, "mget") == mget_before + 1
    assert command_calls(redis_server, "get") == get_before
    assert results == [f"/videos/{i}.mp4" if i % 2 == 0 else None for i in range(100)]


async def test_async_get_many_is_one_mget(cache_factory: CacheFactory, redis_url: str,
                                          redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    try:
        await cache.aset("a", ["1"], "/videos/a.mp4")
        before = command_calls(redis_server, "mget")
        assert await cache.aget_many([("a", ["1"]), ("b", ["2"])]) == ["/videos/a.mp4", None]
        assert command_calls(redis_server, "mget") == before + 1
    finally:
        await cache.aclose()


def test_invalidation_during_fill_leaves_the_entry_stale(
        cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer) -> None:
    """Force the race: an invalidation lands between the Redis read and the memory fill."""
    cache = cache_factory(redis_url)
    cache.set("race", ["forced"], "/videos/v1.mp4")
    wait_until(lambda: near_ready(cache))
    listener = cache._listener
    assert listener is not None
    key = cache.key_for("race", ["forced"])
    memory = cache.core.memory
    original_set = memory.set_copy

    def set_then_invalidate(*args: object) -> None:
        # Another instance writes v2 and its invalidation is handled after our epoch
        # check but before our fill: marking stale finds nothing to mark yet.
        redis_server.client().set(key, b'{"video_url":"/videos/v2.mp4","created_at":'
                                       b'"2030-01-01T00:00:00.000000+00:00","permanent":false}')
        memory.delete(key)
        listener._apply([key.encode()])  # what the listener thread does on that write
        original_set(*args)  # type: ignore[arg-type]

    memory.mark_stale(key)  # so the next read goes to Redis
    memory.set_copy = set_then_invalidate  # type: ignore[method-assign]
    try:
        assert cache.get("race", ["forced"]) == "/videos/v1.mp4"  # the racing read
    finally:
        memory.set_copy = original_set  # type: ignore[method-assign]
    assert memory.get(key, fresh_only=True) is None
    assert cache.get("race", ["forced"]) == "/videos/v2.mp4"
