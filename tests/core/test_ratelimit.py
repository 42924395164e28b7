"""RateLimits: counted in a real Redis and shared between instances, memory when Redis is down."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.core.config import Settings
from app.core.ratelimit import RateLimits, limits_url, parse_rate
from tests.support.redis_server import RedisServer, free_port


async def test_memory_limit_refuses_past_the_rate_and_says_when_to_retry() -> None:
    limits = RateLimits("memory://")
    await limits.start()
    assert limits.backend == "memory"
    results = [await limits.hit("join", "10.0.0.1", "3/minute") for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert await limits.hit("join", "10.0.0.2", "3/minute")  # another key counts apart
    assert await limits.hit("create", "10.0.0.1", "3/minute")  # another name counts apart
    assert 1 <= await limits.retry_after("join", "10.0.0.1", "3/minute") <= 60
    verdict = await limits.check("join", "10.0.0.1", "3/minute")
    assert not verdict.allowed and verdict.remaining == 0 and 1 <= verdict.retry_after <= 60
    await limits.clear("join", "10.0.0.1", "3/minute")
    assert await limits.test("join", "10.0.0.1", "3/minute")
    await limits.aclose()


async def test_redis_counts_are_shared_between_instances(redis_url: str,
                                                         redis_server: RedisServer) -> None:
    first, second = RateLimits(redis_url), RateLimits(redis_url)
    await first.start()
    await second.start()
    assert first.backend == "redis"
    assert await first.hit("join", "1.2.3.4", "2/minute")
    assert await second.hit("join", "1.2.3.4", "2/minute")
    assert not await first.hit("join", "1.2.3.4", "2/minute")
    assert not await second.hit("join", "1.2.3.4", "2/minute")
    with redis_server.client() as client:
        assert client.keys("punchline:limits*"), "the counts live in Redis"
    await first.aclose()
    await second.aclose()


async def test_dead_redis_fails_open_to_memory_without_raising(
        caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits(f"redis://127.0.0.1:{free_port()}", retry_interval=60)
    started = time.monotonic()
    await limits.start()
    assert limits.backend == "memory"
    assert [await limits.hit("join", "a", "2/minute") for _ in range(3)] == [True, True, False]
    assert time.monotonic() - started < 2
    assert "counting in memory" in caplog.text
    await limits.aclose()


async def redis_answers_again(limits: RateLimits, timeout: float = 5.0) -> None:
    """Wait until a call goes to Redis and succeeds: not a fixed sleep, since under load the
    first call after the retry interval may still fail and start another interval."""
    deadline = time.monotonic() + timeout
    while True:
        before = limits.backend  # where this test() call goes
        await limits.test("x", "probe", "5/minute")  # counts nothing
        if before == limits.backend == "redis":  # it went to Redis and did not fail
            return
        assert time.monotonic() < deadline, "the limits never went back to Redis"
        await asyncio.sleep(0.02)


async def test_redis_lost_mid_run_moves_to_memory_and_back(tmp_path) -> None:
    server = RedisServer(tmp_path / "r")
    server.start()
    limits = RateLimits(server.url, retry_interval=0.2)
    try:
        await limits.start()
        assert await limits.hit("x", "k", "5/minute")
        server.stop()
        assert await limits.hit("x", "k", "5/minute")  # answered from memory, no exception
        assert limits.backend == "memory"
        server.start()
        await redis_answers_again(limits)  # after the retry interval, once a call succeeds
        assert await limits.hit("x", "k", "5/minute")
        assert limits.backend == "redis"
        with server.client() as client:
            assert client.keys("punchline:limits*"), "counted in Redis again"
    finally:
        await limits.aclose()
        server.stop()


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_rate("lots")


@pytest.mark.parametrize(("url", "expected"), [
    ("memory://", None), ("redis://h:1/2", "async+redis://h:1/2"),
    ("rediss://:p@h", "async+rediss://:p@h"),
    ("unix:///tmp/r.sock", "async+redis+unix:///tmp/r.sock"),
])
def test_storage_urls(url: str, expected: str | None) -> None:
    assert limits_url(url) == expected


async def test_from_settings_honours_redis_db() -> None:
    assert RateLimits.from_settings(Settings(_env_file=None, redis_url="memory://")).backend \
        == "memory"
    limits = RateLimits.from_settings(Settings(_env_file=None, redis_url="redis://h:1/5",
                                               redis_db=2))
    assert limits._pool is not None and limits._pool.connection_kwargs["db"] == 2
    await limits.aclose()
