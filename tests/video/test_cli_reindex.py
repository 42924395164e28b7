"""`reindex` and `warm`: the functions and the Typer commands."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cache.healer import LOCK_KEY, MARKER_KEY
from app.cli import cli as cli_app
from app.cli import video_commands
from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.video.local import LocalRenderer
from app.video.reindex import index_healer, reindex
from app.video.service import VideoService
from tests.support.redis_server import RedisServer, free_port
from tests.video.conftest import ServiceFactory, video_settings
from tests.video.redis_loss import kill_and_restart_empty

BLACK, WHITES = "Reindex me, _.", ["please"]


async def test_reindex_rebuilds_lost_entries(service_factory: ServiceFactory, tmp_path: Path,
                                             redis_url: str, redis_server: RedisServer) -> None:
    service = service_factory(redis_url)
    permanent_url = await service.get_or_create(BLACK, WHITES, permanent=True)
    temporary_url = await service.get_or_create("Temporary _.", ["thing"])
    promoted_url = await service.get_or_create("Promote _.", ["me"])
    await service.get_or_create("Promote _.", ["me"], permanent=True)
    # Redis loses everything; the promoted one comes back as temporary from somewhere
    redis_server.flush()
    await service.cache.aset("Promote _.", ["me"], promoted_url, permanent=False)
    # an orphan file and a sidecar that lies about its texts
    orphan = "f" * 64
    (service.storage.directory / f"{orphan}.mp4").write_bytes(b"x")
    liar = "e" * 64
    (service.storage.directory / f"{liar}.mp4").write_bytes(b"x")
    (service.storage.directory / f"{liar}.json").write_text(json.dumps({
        "key": f"video:{liar}", "black_card": "a", "white_cards": ["b"], "permanent": True,
        "created_at": "2026-01-01T00:00:00+00:00"}))

    dry = await reindex(service, dry_run=True)
    assert dry.restored == 2 and await service.cache.aget_entry(BLACK, WHITES) is None

    report = await reindex(service)
    assert (report.scanned, report.restored, report.promoted, report.orphans,
            report.mismatched) == (5, 2, 1, 1, 1)
    entry = await service.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.video_url == permanent_url and entry.permanent
    assert redis_server.client().ttl(service.cache.key_for(BLACK, WHITES)) == -1
    temp = await service.cache.aget_entry("Temporary _.", ["thing"])
    assert temp is not None and temp.video_url == temporary_url and not temp.permanent
    promoted = await service.cache.aget_entry("Promote _.", ["me"])
    assert promoted is not None and promoted.permanent

    again = await reindex(service)
    assert again.present == 3 and again.restored == 0


async def test_expired_temporary_videos_are_not_restored(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service = service_factory(cache_temporary_ttl=1)
    url = await service.get_or_create(BLACK, WHITES)
    sha = url.split("/")[-1][:-4]
    sidecar = json.loads(service.storage.meta_path(sha).read_text())
    sidecar["created_at"] = "2020-01-01T00:00:00+00:00"
    service.storage.meta_path(sha).write_text(json.dumps(sidecar))
    await service.cache.adelete(BLACK, WHITES)
    report = await reindex(service)
    assert report.expired == 1 and await service.cache.aget(BLACK, WHITES) is None


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[typer.Typer, Settings]:
    settings = video_settings(tmp_path, redis_url)

    def build(s: Settings) -> VideoService:
        return VideoService(s, cache=VideoCache(s), provider=LocalRenderer(s, pool="thread"))

    monkeypatch.setattr(video_commands, "_service", build)
    return cli_app, settings


def test_cli_warm_and_reindex(cli: tuple[typer.Typer, Settings], redis_server: RedisServer
                              ) -> None:
    app, settings = cli

    async def plays() -> None:
        service = video_commands._service(settings)
        for _ in range(3):
            await service.record_play(BLACK, WHITES)
        await service.record_play("Second _.", ["place"])
        await service.aclose()
        await service.cache.aclose()

    asyncio.run(plays())
    runner = CliRunner()
    result = runner.invoke(app, ["warm", "--top", "2"], obj=settings)
    assert result.exit_code == 0, result.output
    assert "2 generated" in result.output
    assert len(redis_server.client().keys("video:*")) == 2

    redis_server.client().delete(*redis_server.client().keys("video:*"))
    result = runner.invoke(app, ["reindex"], obj=settings)
    assert result.exit_code == 0, result.output
    assert "restored" in result.output
    assert len(redis_server.client().keys("video:*")) == 2

    redis_server.client().delete(*redis_server.client().keys("video:*"))
    dry = runner.invoke(app, ["reindex", "--dry-run"], obj=settings)
    assert dry.exit_code == 0, dry.output
    assert "would restore" in dry.output and "restored" not in dry.output
    assert redis_server.client().keys("video:*") == []


def test_cli_reindex_and_warm_fail_loudly_without_redis(tmp_path: Path) -> None:
    settings = video_settings(tmp_path, f"redis://127.0.0.1:{free_port()}")
    (settings.resolved_video_dir).mkdir(parents=True)
    runner = CliRunner()
    for args in (["reindex"], ["warm", "--top", "3"]):
        result = runner.invoke(cli_app, args, obj=settings)
        assert result.exit_code == 1, (args, result.output)
        assert "unreachable" in result.output
        assert "restored" not in result.output and "generated" not in result.output
    assert not settings.journal_path.exists()
    memory = runner.invoke(cli_app, ["reindex"], obj=video_settings(tmp_path, "memory://"))
    assert memory.exit_code == 1 and "memory://" in memory.output


async def eventually(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until `predicate()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.slow
async def test_index_heals_after_redis_restarts_empty(service_factory: ServiceFactory,
                                                      own_redis: RedisServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    service = service_factory(own_redis.url)  # the default check interval
    await service.cache.astart()
    healer = index_healer(service)
    healer.start()
    try:
        combos = [(f"Winner {i}: _.", [f"answer {i}"]) for i in range(3)]
        async with asyncio.timeout(60):  # a bound that names this step if it ever hangs
            urls = [await service.get_or_create(black, whites, permanent=True)
                    for black, whites in combos]
        keys = [service.cache.key_for(black, whites) for black, whites in combos]
        client = own_redis.client()
        await eventually(lambda: bool(client.exists(MARKER_KEY)), 10)
        rebuilds = service.cache.core.counters.index_rebuilds

        client = kill_and_restart_empty(own_redis)

        def healed() -> bool:
            return all(client.ttl(key) == -1 for key in keys)

        seconds = await eventually(healed, 10)
        print(f"index back {seconds:.2f}s after Redis restarted empty")  # noqa: T201
        for (black, whites), url in zip(combos, urls, strict=True):
            entry = await service.cache.aget_entry(black, whites)
            assert entry is not None and entry.video_url == url and entry.permanent
        await eventually(lambda: bool(client.exists(MARKER_KEY)), 5)
        assert service.cache.core.counters.index_rebuilds == rebuilds + 1
        assert service.cache.core.counters.index_restored >= 3
        assert "rebuilding the video index" in caplog.text
    finally:
        await healer.stop()


async def test_one_instance_rebuilds_while_another_holds_the_lock(
        service_factory: ServiceFactory, redis_url: str, redis_server: RedisServer) -> None:
    first = service_factory(redis_url)
    await first.get_or_create(BLACK, WHITES, permanent=True)
    redis_server.flush()
    redis_server.client().set(LOCK_KEY, "another instance", px=30_000)
    healer = index_healer(first)
    assert await healer.check_once() is False  # someone else is at it
    assert redis_server.client().keys("video:*") == []
    redis_server.client().delete(LOCK_KEY)
    assert await healer.check_once() is True
    assert redis_server.client().ttl(first.cache.key_for(BLACK, WHITES)) == -1
    assert await healer.check_once() is False  # the marker is back: nothing to do
    assert redis_server.client().exists(LOCK_KEY) == 0


async def test_concurrent_instances_rebuild_once(service_factory: ServiceFactory, redis_url: str,
                                                 redis_server: RedisServer) -> None:
    first, second = service_factory(redis_url), service_factory(redis_url)  # one video folder
    await first.get_or_create(BLACK, WHITES, permanent=True)
    redis_server.flush()
    outcomes = await asyncio.gather(index_healer(first).check_once(),
                                    index_healer(second).check_once())
    assert sorted(outcomes) == [False, True]
    assert redis_server.client().ttl(first.cache.key_for(BLACK, WHITES)) == -1
    rebuilds = first.cache.core.counters.index_rebuilds + second.cache.core.counters.index_rebuilds
    assert rebuilds == 1
