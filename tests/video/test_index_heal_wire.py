"""The running server rebuilds its index when Redis comes back empty (issue 10, item 10).

Against the wire: a real uvicorn (the spec's command) with its own redis-server without
persistence; the winners are made by a `VideoService` of this process over the same video
folder (real rendered MP4s and sidecars), which is closed before Redis dies, so only the
server's lifespan (`video_lifespan` starts the index healer) can bring them back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from app.core.cards import Combination
from app.services.video_cache import VideoCache
from app.video.local import LocalRenderer
from app.video.service import VideoService
from tests.support.app_server import run_app_server
from tests.support.redis_server import RedisServer
from tests.video.conftest import video_settings
from tests.video.redis_loss import kill_and_restart_empty

COMBOS = [Combination(f"Wire winner {i}: _.", [f"answer number {i}"]) for i in range(3)]


async def make_winners(redis_url: str, workdir: Path, video_dir: Path) -> list[str]:
    settings = video_settings(workdir, redis_url, video_dir=video_dir)
    service = VideoService(settings, cache=VideoCache(settings),
                           provider=LocalRenderer(settings))
    try:
        return [await service.get_or_create(combo, permanent=True) for combo in COMBOS]
    finally:
        await service.aclose()
        await service.cache.aclose()


def lookup(base_url: str, combo: Combination) -> httpx.Response:
    return httpx.get(f"{base_url}/api/videos",
                     params={"black": combo.black, "white": list(combo.whites)}, timeout=5)


@pytest.mark.slow
def test_server_finds_winners_again_after_redis_restarts_empty(own_redis: RedisServer,
                                                               tmp_path: Path) -> None:
    video_dir = tmp_path / "videos"
    env = {"REDIS_URL": own_redis.url, "VIDEO_DIR": str(video_dir),
           "VIDEO_RENDER_POOL": "thread", "VIDEO_NARRATION": "false",
           "CACHE_INDEX_CHECK_INTERVAL": "2.0", "LOG_LEVEL": "INFO"}
    with run_app_server(tmp_path / "server", env) as server:
        urls = asyncio.run(make_winners(own_redis.url, tmp_path / "maker", video_dir))
        client = own_redis.client()
        for combo, url in zip(COMBOS, urls, strict=True):
            found = lookup(server.base_url, combo)
            assert found.status_code == 200 and found.json()["video_url"] == url
            assert client.ttl(combo.key) == -1

        client = kill_and_restart_empty(own_redis)
        restarted = time.monotonic()

        def healed() -> bool:
            for combo, url in zip(COMBOS, urls, strict=True):
                if client.ttl(combo.key) != -1:
                    return False
                found = lookup(server.base_url, combo)
                if found.status_code != 200 or found.json()["video_url"] != url:
                    return False
            return True

        while not healed():
            assert time.monotonic() - restarted < 10, f"not healed in 10 s:\n{server.log}"
            time.sleep(0.1)
        seconds = time.monotonic() - restarted
        print(f"index back through /api/videos {seconds:.2f}s after Redis restarted empty")  # noqa: T201
        assert all(found.json()["permanent"] for found in
                   (lookup(server.base_url, combo) for combo in COMBOS))
    assert "rebuilding the video index" in server.log
