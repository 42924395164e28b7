"""`video_cache.shared`: typed Redis commands for other layers, errors mapped in one place."""

from __future__ import annotations

import time

import pytest
import redis

from app.cache.errors import RedisUnavailable, WrongTypeError, mapped_errors
from tests.cache.conftest import CacheFactory
from tests.support.redis_server import RedisServer, free_port


async def test_commands_reach_redis(cache_factory: CacheFactory, redis_url: str,
                                    redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()
    shared = cache.shared
    try:
        assert await shared.set("lock", "me", px=5000, only_if_absent=True) is True
        assert await shared.set("lock", "you", px=5000, only_if_absent=True) is False
        assert await shared.get("lock") == b"me" and await shared.exists("lock")
        assert 0 < await shared.pttl("lock") <= 5000
        release = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                   "return redis.call('del', KEYS[1]) end return 0")
        assert await shared.eval(release, ["lock"], ["you"]) == 0
        assert await shared.eval(release, ["lock"], ["me"]) == 1
        for member in ("a", "b", "b", "c", "c", "c"):
            await shared.zincrby("plays", 1, member)
        assert await shared.ztrim("plays", 2) == 1
        assert await shared.ztop("plays", 5) == [(b"c", 3.0), (b"b", 2.0)]
        redis_server.client().set("text", "x")
        with pytest.raises(WrongTypeError):
            await shared.zincrby("text", 1, "a")
        assert cache.core.redis_usable  # a wrong type is no outage
    finally:
        await cache.aclose()


async def test_an_outage_raises_one_error_type_fast(cache_factory: CacheFactory,
                                                    own_redis: RedisServer) -> None:
    cache = cache_factory(own_redis.url)
    await cache.astart()
    try:
        own_redis.stop()
        with pytest.raises(RedisUnavailable):
            await cache.shared.set("k", "v")
        assert cache.core.breaker.is_open  # it opened the cache's breaker too
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await cache.shared.get("k")
        assert time.monotonic() - started < 0.05  # no call waits while the breaker is open
    finally:
        await cache.aclose()


async def test_memory_only_has_no_shared_redis(cache_factory: CacheFactory) -> None:
    cache = cache_factory("memory://")
    assert not cache.shared.available
    with pytest.raises(RedisUnavailable):
        await cache.shared.exists("k")


def test_mapped_errors_maps_backend_failures_and_nothing_else() -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    with pytest.raises(RedisUnavailable) as caught, mapped_errors():
        client.ping()
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    with pytest.raises(RedisUnavailable), mapped_errors():
        raise TimeoutError("slow")
    with pytest.raises(KeyError), mapped_errors():
        raise KeyError("a bug stays a bug")
