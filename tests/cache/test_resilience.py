"""Real faults against a redis-server of the test's own: refused, frozen, restarted,
write errors, corrupt data. Nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cache.keys import key_for
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory
from tests.cache.test_redis_integration import run_python
from tests.support.redis_server import RedisServer

RECOVERY_DEADLINE = 15.0  # generous: a bound for the test, not a performance assertion


def wait_until(condition: Callable[[], bool], deadline: float = RECOVERY_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.05)


def connected(cache: VideoCache) -> bool:
    return cache.core.redis_usable


def test_refused_then_recovered_with_replay(cache_factory: CacheFactory,
                                            own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    cache.set("before", ["outage"], "/videos/before.mp4")
    assert cache.get("before", ["outage"]) == "/videos/before.mp4"

    own_redis.stop()
    # Reads of recent entries and new writes keep working from memory.
    assert cache.get("before", ["outage"]) == "/videos/before.mp4"
    cache.set("during", ["outage"], "/videos/during.mp4", permanent=True)
    cache.set("temp", ["outage"], "/videos/temp.mp4", permanent=False)
    assert cache.delete("before", ["outage"]) is True
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory"
    assert stats["redis_connected"] is False
    assert stats["degraded_since"] is not None
    assert stats["fallbacks"] >= 3
    assert stats["pending_replay"] == 3
    assert "refused" in stats["last_error"].lower()

    own_redis.start()
    wait_until(lambda: connected(cache))
    client = own_redis.client()
    wait_until(lambda: client.exists(key_for("during", ["outage"])) == 1)
    assert client.ttl(key_for("during", ["outage"])) == -1
    assert 86000 < client.ttl(key_for("temp", ["outage"])) <= 86400
    assert json.loads(client.get(key_for("temp", ["outage"])))["permanent"] is False
    assert cache.get_stats()["pending_replay"] == 0
    assert cache.get_stats()["reconnects"] == 1


def test_frozen_server_is_detected_and_survived(cache_factory: CacheFactory,
                                                own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url, redis_socket_timeout=0.2)
    cache.set("hot", ["entry"], "/videos/hot.mp4")
    own_redis.freeze()
    try:
        cache.set("frozen", ["write"], "/videos/frozen.mp4", permanent=True)  # times out once
        assert cache.core.breaker.is_open
        for _ in range(50):  # now served from memory without waiting on the frozen server
            assert cache.get("hot", ["entry"]) == "/videos/hot.mp4"
            assert cache.get("frozen", ["write"]) == "/videos/frozen.mp4"
        assert cache.get_stats()["errors"] == 1
    finally:
        own_redis.thaw()
    wait_until(lambda: connected(cache))
    assert own_redis.client().ttl(key_for("frozen", ["write"])) == -1


def test_restart_while_pool_connections_are_in_use(cache_factory: CacheFactory,
                                                   own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    cache.set("a", ["b"], "/videos/a.mp4", permanent=True)
    cache.get("a", ["b"])  # the pool now holds a live connection
    own_redis.restart()  # no persistence: the server comes back empty
    cache.set("after", ["restart"], "/videos/after.mp4", permanent=True)
    assert cache.get("after", ["restart"]) == "/videos/after.mp4"
    wait_until(lambda: connected(cache))
    wait_until(lambda: own_redis.client().exists(key_for("after", ["restart"])) == 1)
    assert cache.get("after", ["restart"]) == "/videos/after.mp4"


async def test_async_outage_probe_runs_as_a_task(cache_factory: CacheFactory,
                                                 own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    await cache.astart()
    try:
        await cache.aset("async", ["hit"], "/videos/async.mp4", permanent=True)
        own_redis.stop()
        assert await cache.aget("async", ["hit"]) == "/videos/async.mp4"
        await cache.aset("async", ["outage"], "/videos/o.mp4", permanent=True)
        assert cache.core.breaker.is_open
        assert cache._thread_prober is None  # the task does the probing
        own_redis.start()
        end = time.monotonic() + RECOVERY_DEADLINE
        while not cache.core.redis_usable and time.monotonic() < end:
            await asyncio.sleep(0.05)
        assert cache.core.redis_usable
        assert own_redis.client().ttl(key_for("async", ["outage"])) == -1
    finally:
        await cache.aclose()


def test_out_of_memory_writes_fall_back_and_replay(cache_factory: CacheFactory,
                                                   own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    client = own_redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1")  # every write is now refused with OOM
    cache.set("oom", ["write"], "/videos/oom.mp4", permanent=True)
    assert cache.get("oom", ["write"]) == "/videos/oom.mp4"
    assert "OutOfMemoryError" in cache.get_stats()["last_error"]
    client.config_set("maxmemory", "0")
    wait_until(lambda: client.exists(key_for("oom", ["write"])) == 1)
    assert client.ttl(key_for("oom", ["write"])) == -1


def test_readonly_replica_writes_fall_back_and_replay(cache_factory: CacheFactory,
                                                      own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    client = own_redis.client()
    client.execute_command("REPLICAOF", "127.0.0.1", "1")  # a master that never answers
    try:
        cache.set("readonly", ["write"], "/videos/ro.mp4", permanent=True)
        assert cache.get("readonly", ["write"]) == "/videos/ro.mp4"
        assert "ReadOnlyError" in cache.get_stats()["last_error"]
    finally:
        client.execute_command("REPLICAOF", "NO", "ONE")
    wait_until(lambda: client.exists(key_for("readonly", ["write"])) == 1)


@pytest.mark.parametrize(
    "corrupt",
    [b"garbage{", b'{"video_url": "/v.mp4"}', b'{"video_url": 1, "created_at": "x", '
     b'"permanent": true}', b"[1, 2]", b'{"video_url": "/v.mp4", "created_at": "x", '
     b'"permanent": "yes"}', "hash"],
)
def test_corrupt_entries_are_misses_logged_once(
        cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer,
        caplog: pytest.LogCaptureFixture, corrupt: bytes | str) -> None:
    cache = cache_factory(redis_url)
    key = key_for("corrupt", ["entry"])
    client = redis_server.client()
    if corrupt == "hash":
        client.hset(key, "video_url", "/v.mp4")
    else:
        client.set(key, corrupt)
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        assert cache.get("corrupt", ["entry"]) is None
    assert cache.get_many([("corrupt", ["entry"])]) == [None]
    warnings = [r for r in caplog.records if "corrupt cache entry" in r.getMessage()]
    assert len(warnings) == 1
    stats = cache.get_stats()
    assert stats["corrupt"] >= 3
    assert stats["cache_type"] == "redis"  # a bad value is not an outage
    cache.set("corrupt", ["entry"], "/videos/fixed.mp4")  # and can be overwritten
    assert cache.get("corrupt", ["entry"]) == "/videos/fixed.mp4"


def test_newer_value_from_another_instance_is_kept(cache_factory: CacheFactory,
                                                   own_redis: RedisServer,
                                                   tmp_path: Path) -> None:
    slow = cache_factory(own_redis.url, cache_probe_base=60, cache_probe_max_interval=60)
    slow.set("race", ["x"], "/videos/seed.mp4")
    own_redis.stop()
    slow.set("race", ["x"], "/videos/older.mp4")  # journaled while Redis is down
    slow.set("promote", ["x"], "/videos/promote.mp4", permanent=True)
    own_redis.start()
    other = cache_factory(own_redis.url, data_dir=tmp_path / "other-instance")
    other.set("race", ["x"], "/videos/newer.mp4")  # written later by another instance
    other.set("promote", ["x"], "/videos/promote-newer.mp4", permanent=False)
    slow.core.breaker.next_probe_at = 0  # let the probe run now
    wait_until(lambda: connected(slow))
    stats = slow.get_stats()
    assert stats["replay_kept_newer"] == 2
    assert other.get("race", ["x"]) == "/videos/newer.mp4"
    # The newer value stays, but the acknowledged permanent entry keeps its permanence.
    client = own_redis.client()
    promoted = json.loads(client.get(key_for("promote", ["x"])))
    assert promoted["video_url"] == "/videos/promote-newer.mp4"
    assert promoted["permanent"] is True
    assert client.ttl(key_for("promote", ["x"])) == -1


def test_long_outage_keeps_memory_bounded_and_loses_nothing(
        cache_factory: CacheFactory, own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url, cache_memory_max_entries=50)
    own_redis.stop()
    for index in range(500):
        cache.set(f"black {index}", ["white"], f"/videos/{index}.mp4", permanent=index % 2 == 0)
        assert len(cache.core.memory) <= 50
    assert cache.get_stats()["memory_entries"] == 50
    assert cache.get_stats()["pending_replay"] == 500
    own_redis.start()
    wait_until(lambda: connected(cache) and cache.get_stats()["pending_replay"] == 0)
    client = own_redis.client()
    assert len(list(client.scan_iter("video:*"))) == 500
    assert client.ttl(key_for("black 0", ["white"])) == -1
    assert client.ttl(key_for("black 1", ["white"])) > 0


def test_permanent_entry_survives_restart_during_outage(own_redis: RedisServer,
                                                        tmp_path: Path) -> None:
    url = own_redis.url
    own_redis.stop()
    data = tmp_path / "data"
    write = """
        from app.services.video_cache import video_cache
        video_cache.set("kept", ["through restart"], "/videos/kept.mp4", permanent=True)
        print(video_cache.get_stats()["cache_type"])
    """
    read = """
        from app.services.video_cache import video_cache
        print(video_cache.get("kept", ["through restart"]), video_cache.get_stats()["cache_type"])
    """
    assert run_python(write, url, data) == "memory"
    assert run_python(read, url, data) == "/videos/kept.mp4 memory"  # restarted, still down
    own_redis.start()
    replay = """
        import time
        from app.services.video_cache import video_cache
        video_cache.get_stats()
        for _ in range(200):
            if video_cache.get_stats()["pending_replay"] == 0:
                break
            time.sleep(0.05)
        print(video_cache.get_stats()["cache_type"])
    """
    assert run_python(replay, url, data) == "redis"
    client = own_redis.client()
    assert client.ttl(key_for("kept", ["through restart"])) == -1
    assert json.loads(client.get(key_for("kept", ["through restart"])))["permanent"] is True


async def test_concurrent_first_calls_start_once(cache_factory: CacheFactory,
                                                 redis_url: str) -> None:
    cache = cache_factory(redis_url)
    try:
        await asyncio.gather(*(cache.aget("first", [str(i)]) for i in range(5)))
        probes = [t for t in asyncio.all_tasks() if t.get_name() == "video-cache-probe"]
        assert len(probes) == 1
    finally:
        await cache.aclose()
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "video-cache-probe"]


async def test_cancelled_probe_gives_its_slot_back(cache_factory: CacheFactory,
                                                   own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url, redis_socket_timeout=2.0, redis_connect_timeout=2.0)
    await cache.astart()
    own_redis.freeze()
    try:
        await cache.aset("x", ["y"], "/videos/x.mp4")  # times out: opens the breaker
        assert cache.core.breaker.is_open
        cache.core.breaker.next_probe_at = 0
        end = time.monotonic() + RECOVERY_DEADLINE
        while not cache.core.breaker._probing and time.monotonic() < end:
            await asyncio.sleep(0.01)
        assert cache.core.breaker._probing  # a probe now waits on the frozen server
        await cache.aclose()  # cancels the probe task mid-probe
        assert not cache.core.breaker._probing
    finally:
        own_redis.thaw()
    cache.core.breaker.next_probe_at = 0
    cache.set("after", ["restart"], "/videos/a.mp4", permanent=True)
    wait_until(lambda: connected(cache))
