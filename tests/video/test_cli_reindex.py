"""`reindex` and `warm`: the functions and the Typer commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli import cli as cli_app
from app.cli import video_commands
from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.video.local import LocalRenderer
from app.video.reindex import reindex
from app.video.service import VideoService
from tests.support.redis_server import RedisServer
from tests.video.conftest import ServiceFactory, video_settings

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
