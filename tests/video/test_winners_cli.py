"""`python -m app.cli takedown ID` against a real Redis, through Typer's CliRunner."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from app.cli import cli
from app.core.cards import Combination
from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.video.local import LocalRenderer
from app.video.service import VideoService
from app.video.storage import sha_of_key
from app.video.winners import ZSET_KEY
from tests.support.redis_server import RedisServer, free_port
from tests.video.conftest import video_settings

COMBO = Combination("Take _ down.", ["this joke"])


def _run(settings: Settings, work: str) -> list[str]:
    """Win with COMBO (work="win") or list the gallery (work="list") in a fresh service."""
    async def go() -> list[str]:
        service = VideoService(settings, cache=VideoCache(settings),
                               provider=LocalRenderer(settings, pool="thread"))
        try:
            if work == "win":
                await service.get_or_create(COMBO, permanent=True)
                await service.record_winner(COMBO)
            return [w.sha for w in (await service.winners.page())[0]]
        finally:
            await service.aclose()
            await service.cache.aclose()
    return asyncio.run(go())


def test_takedown_removes_a_winner(tmp_path: Path, redis_url: str,
                                   redis_server: RedisServer) -> None:
    settings = video_settings(tmp_path, redis_url)
    sha = sha_of_key(COMBO.key)
    assert _run(settings, "win") == [sha]
    runner = CliRunner()
    result = runner.invoke(cli, ["takedown", sha.upper()], obj=settings)
    assert result.exit_code == 0, result.output
    assert f"Taken down: {sha}" in result.output
    assert redis_server.client().zscore(ZSET_KEY, sha) is None
    assert _run(settings, "list") == []
    again = runner.invoke(cli, ["takedown", sha], obj=settings)
    assert again.exit_code == 1 and "not in the gallery" in again.output
    bad = runner.invoke(cli, ["takedown", "../../etc"], obj=settings)
    assert bad.exit_code == 2 and "not a video id" in bad.output


def test_takedown_changes_nothing_when_redis_is_unreachable(tmp_path: Path) -> None:
    settings = video_settings(tmp_path)  # memory://: the win is recorded on disk
    sha = sha_of_key(COMBO.key)
    assert _run(settings, "win") == [sha]
    dead = video_settings(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    result = CliRunner().invoke(cli, ["takedown", sha], obj=dead)
    assert result.exit_code == 1 and "unreachable" in result.output
    assert _run(settings, "list") == [sha]
    # memory:// takes it down on disk, for the next start
    local = CliRunner().invoke(cli, ["takedown", sha], obj=settings)
    assert local.exit_code == 0 and "on disk only" in local.output
    assert _run(settings, "list") == []
