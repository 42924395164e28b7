"""A game against the real video service (app.video.service) with the local MP4 renderer and an
in-memory cache: winners come back as real, decodable MP4 files."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.services.video_cache import VideoCache
from app.video.local import LocalRenderer
from app.video.service import VideoService
from tests.sockets.support import by_id, round_state, submit_all, table
from tests.video.mp4 import decode


async def test_game_with_the_real_renderer(make_server: Any, clients: Any, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        app_env="test",
        redis_url="memory://",
        data_dir=tmp_path / "data",
        video_dir=tmp_path / "videos",
        video_render_pool="thread",
        video_narration=False,
        pregen_enabled=False,
    )
    cache = VideoCache(settings)
    service = VideoService(settings, cache=cache, provider=LocalRenderer(settings))

    @contextlib.asynccontextmanager
    async def video_lifespan() -> AsyncIterator[None]:
        await cache.astart()
        await service.start()
        try:
            yield
        finally:
            await service.aclose()
            await cache.aclose()

    server = make_server(video_service=service, extra_lifespan=video_lifespan)
    players = await table(clients, server, 3, score_limit=1)
    host = players[0]
    assert (await host.call("start_game"))["ok"]
    state = await round_state(host, 1)
    await submit_all(players, state)
    czar = by_id(players, state["czar_id"])
    subs = await czar.wait_for("submissions")
    chosen = subs["submissions"][0]
    assert (await czar.call("pick_winner", {"submission_id": chosen["submission_id"]}))["ok"]
    await host.wait_for("game_over")
    ready = await host.wait_for("video_ready", timeout=60)
    assert ready["white_cards"] == chosen["cards"]
    assert ready["video_url"].startswith("/videos/") and ready["video_url"].endswith(".mp4")
    path = tmp_path / "videos" / ready["video_url"].removeprefix("/videos/")
    video = decode(path)
    assert video.frames > 0 and video.duration > 0
    # cached permanently under the combination
    entry = await cache.aget_entry(state["black_card"]["text"], chosen["cards"])
    assert entry is not None and entry.permanent and entry.video_url == ready["video_url"]
