"""Popularity counting and pre-generation of the most played combinations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from app.core.cards import Combination
from app.video.combos import popular_combinations as popular_combinations_of
from app.video.local import LocalRenderer
from app.video.popularity import POPULARITY_KEY
from app.video.pregen import Pregenerator, pregenerate, run_pregeneration
from app.video.service import VideoService, generate_video, set_video_service
from tests.support.redis_server import RedisServer
from tests.video.conftest import CountingProvider, ServiceFactory, video_settings

PLAYS = {
    ("Why am I sticky? _.", ("Jazz hands.",)): 5,
    ("_ + _ = _.", ("Cats", "Lasers")): 3,
    ("What's that smell? _.", ("Grandpa's pipe.",)): 2,
    ("Life is _.", ("A box of chocolates.",)): 1,
}


async def play_all(service: VideoService) -> None:
    for (black, whites), times in PLAYS.items():
        for _ in range(times):
            await service.record_play(black, list(whites))


def counting(service_factory: ServiceFactory, tmp_path: Path, redis_url: str = "memory://",
             **overrides: object) -> tuple[VideoService, CountingProvider]:
    settings = video_settings(tmp_path, redis_url, **overrides)
    provider = CountingProvider(LocalRenderer(settings))
    return service_factory(settings=settings, provider=provider), provider


async def test_plays_are_counted_in_a_redis_sorted_set(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    service, _ = counting(service_factory, tmp_path, redis_url)
    await play_all(service)
    rows: Any = redis_server.client().zrevrange(POPULARITY_KEY, 0, -1, withscores=True)
    assert [(json.loads(m), s) for m, s in rows] == [
        ([b, list(w)], float(n)) for (b, w), n in PLAYS.items()]
    assert not redis_server.client().keys("video:*")  # outside the video keyspace
    top = await service.popularity.top(2)
    assert top == [(Combination("Why am I sticky? _.", ("Jazz hands.",)), 5.0),
                   (Combination("_ + _ = _.", ("Cats", "Lasers")), 3.0)]


async def test_memory_fallback_counts_too(service_factory: ServiceFactory,
                                          tmp_path: Path) -> None:
    service, _ = counting(service_factory, tmp_path)
    await play_all(service)
    assert [c.black for c, _ in await service.popularity.top(10)] == [b for b, _ in PLAYS]


async def test_pregenerate_top_n_as_temporary_entries(
        service_factory: ServiceFactory, tmp_path: Path, backend_url: str) -> None:
    service, provider = counting(service_factory, tmp_path, backend_url)
    await play_all(service)
    # the most played one is already cached: it is skipped
    await service.get_or_create("Why am I sticky? _.", ["Jazz hands."], permanent=True)
    report = await pregenerate(service, top_n=3, max_generations=5)
    assert (report.considered, report.cached, report.generated, report.failed) == (3, 1, 2, 0)
    assert provider.calls == 3
    for black, whites in list(PLAYS)[1:3]:
        entry = await service.cache.aget_entry(black, list(whites))
        assert entry is not None and entry.permanent is False
    assert await service.cache.aget_entry("Life is _.", ["A box of chocolates."]) is None
    # a second pass finds everything cached
    again = await pregenerate(service, top_n=3, max_generations=5)
    assert (again.cached, again.generated) == (3, 0)


async def test_pregeneration_is_rate_limited(service_factory: ServiceFactory,
                                             tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    await play_all(service)
    report = await pregenerate(service, top_n=4, max_generations=1)
    assert report.generated == 1
    assert provider.calls == 1


async def test_pregeneration_gives_way_to_live_rounds(service_factory: ServiceFactory,
                                                      tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    await play_all(service)
    provider.gate = asyncio.Event()
    live = asyncio.create_task(service.get_or_create("A live round _.", ["now"],
                                                     permanent=True))
    await asyncio.wait_for(provider.started.wait(), 20)
    report = await pregenerate(service, top_n=4, max_generations=4)
    assert report.deferred and report.generated == 0
    provider.gate.set()
    await asyncio.wait_for(live, 20)


async def test_background_task_runs_until_stopped(service_factory: ServiceFactory,
                                                  tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path, pregen_interval=0.05,
                                 pregen_top_n=2, pregen_max_per_run=1)
    await play_all(service)
    stop = asyncio.Event()
    task = asyncio.create_task(run_pregeneration(stop, service))

    async def two_cached() -> None:
        while len([u for u in await service.cache.aget_many(
                [(b, list(w)) for b, w in list(PLAYS)[:2]]) if u]) < 2:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(two_cached(), 30)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert provider.calls == 2  # top 2 only, one per run


async def test_stop_ends_a_pass_after_the_current_generation(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path, pregen_top_n=4, pregen_max_per_run=4)
    await play_all(service)
    provider.gate = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(run_pregeneration(stop, service))
    await asyncio.wait_for(provider.started.wait(), 20)
    stop.set()
    provider.gate.set()
    await asyncio.wait_for(task, 20)
    assert provider.calls == 1  # shutdown does not wait for the rest of the pass


async def test_pregenerator_start_stop(service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, _ = counting(service_factory, tmp_path, pregen_interval=60)
    pregen = Pregenerator(service)
    pregen.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(pregen.stop(), 10)


@pytest.fixture
def singleton(service_factory: ServiceFactory, tmp_path: Path):
    service, provider = counting(service_factory, tmp_path)
    set_video_service(service)
    yield service, provider
    set_video_service(None)


async def test_the_spec_loop_runs_as_written(singleton: tuple[VideoService, CountingProvider],
                                             ) -> None:
    service, provider = singleton
    video_cache = service.cache
    await play_all(service)
    popular_combinations = await popular_combinations_of(top=2)
    assert [c.black for c in popular_combinations] == [b for b, _ in list(PLAYS)[:2]]

    # spec/redis-video-cache-summary.md, "3. Pre-generation", verbatim:
    for combo in popular_combinations:
        if not video_cache.get(combo.black, combo.whites):
            url = await generate_video(combo)
            video_cache.set(combo.black, combo.whites, url, permanent=False)

    assert provider.calls == 2
    assert all(video_cache.get(c.black, c.whites) for c in popular_combinations)


async def test_video_lifespan_starts_and_stops(service_factory: ServiceFactory,
                                               tmp_path: Path) -> None:
    from app.video.lifespan import video_lifespan

    service, provider = counting(service_factory, tmp_path, pregen_enabled=True,
                                 pregen_interval=0.05)
    await play_all(service)
    stale = service.storage.temp_path("a" * 64)
    stale.write_bytes(b"left by a crash")
    import os
    os.utime(stale, (0, 0))
    async with video_lifespan(service) as running:
        assert running is service
        await asyncio.wait_for(provider.started.wait(), 30)
    assert not stale.exists()
