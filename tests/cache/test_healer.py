"""The index healer shows a running rebuild in /metrics, not only the one that finished."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from app.api.metrics import VideoCacheCollector
from app.cache.healer import MARKER_KEY, IndexHealer, Progress
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory
from tests.support.redis_server import RedisServer

IN_PROGRESS = "punchline_cache_index_rebuild_in_progress"
SCANNED = "punchline_cache_index_rebuild_scanned"


def scrape(cache: VideoCache, name: str) -> float | None:
    """One sample, read the way the /metrics route reads it."""
    registry = CollectorRegistry()
    registry.register(VideoCacheCollector(cache))
    return registry.get_sample_value(name)


async def test_a_running_rebuild_shows_in_metrics(cache_factory: CacheFactory, redis_url: str,
                                                   redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()
    scanning, release = asyncio.Event(), asyncio.Event()

    async def rebuild(progress: Progress) -> int:  # a scan that stops half-way until released
        for scanned in (1, 2, 3):
            progress(scanned)
        scanning.set()
        await release.wait()
        progress(4)
        return 4

    healer = IndexHealer(cache.core, cache.shared, rebuild, interval=60)
    try:
        assert scrape(cache, IN_PROGRESS) == 0
        run = asyncio.create_task(healer.check_once())
        async with asyncio.timeout(5):
            await scanning.wait()
        assert scrape(cache, IN_PROGRESS) == 1
        assert scrape(cache, SCANNED) == 3
        release.set()
        assert await run is True
        assert scrape(cache, IN_PROGRESS) == 0
        assert scrape(cache, SCANNED) == 4  # the last rebuild's count stays until the next
        assert scrape(cache, "punchline_cache_index_rebuilds_total") == 1
        assert redis_server.client().exists(MARKER_KEY)
    finally:
        release.set()
        await cache.aclose()


async def test_a_failed_rebuild_is_no_longer_in_progress(cache_factory: CacheFactory,
                                                          redis_url: str) -> None:
    cache = cache_factory(redis_url)
    await cache.astart()

    async def rebuild(progress: Progress) -> int:
        progress(1)
        raise RuntimeError("disk gone")

    healer = IndexHealer(cache.core, cache.shared, rebuild, interval=60)
    try:
        with pytest.raises(RuntimeError):
            await healer.check_once()
        assert scrape(cache, IN_PROGRESS) == 0
        assert scrape(cache, SCANNED) == 1
    finally:
        await cache.aclose()
