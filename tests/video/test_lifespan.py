"""`video_lifespan` runs the index healer between the service's start and its close."""

from __future__ import annotations

import asyncio

from app.cache.healer import MARKER_KEY
from app.core.cards import Combination
from app.video.lifespan import video_lifespan
from tests.support.redis_server import RedisServer
from tests.video.conftest import ServiceFactory


def healer_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "video-index-healer"]


async def test_the_lifespan_heals_a_flushed_index_and_stops_the_healer(
        service_factory: ServiceFactory, redis_url: str, redis_server: RedisServer) -> None:
    service = service_factory(redis_url, cache_index_check_interval=0.05)
    combo = Combination("Healed in the lifespan: _.", ["yes"])
    url = await service.get_or_create(combo, permanent=True)
    client = redis_server.client()
    await service.cache.astart()
    async with video_lifespan(service):
        assert len(healer_tasks()) == 1
        redis_server.flush()  # FLUSHALL under a running app
        async with asyncio.timeout(10):
            while client.ttl(combo.key) != -1 or not client.exists(MARKER_KEY):
                await asyncio.sleep(0.02)
        entry = await service.cache.aget_entry(combo)
        assert entry is not None and entry.video_url == url and entry.permanent
    assert healer_tasks() == []
    assert service.cache.core.on_recover == []  # its reconnect hook is gone too
    client.flushall()
    await asyncio.sleep(0.2)  # four check intervals: nothing runs any more
    assert not client.exists(MARKER_KEY) and client.ttl(combo.key) == -2


async def test_a_memory_only_lifespan_starts_no_healer(service_factory: ServiceFactory) -> None:
    async with video_lifespan(service_factory()):
        assert healer_tasks() == []
