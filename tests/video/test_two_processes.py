"""Two app processes sharing one Redis (and one video directory) render a combination once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, time

    import redis

    from app.core.config import get_settings
    from app.video.service import get_video_service


    async def main() -> None:
        settings = get_settings()
        barrier = redis.Redis.from_url(settings.redis_url)
        service = get_video_service()
        await service.cache.astart()
        await service.start()  # the process pool is up before the race starts
        barrier.incr("test:ready")
        deadline = time.monotonic() + 30
        while int(barrier.get("test:ready") or 0) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        url = await service.get_or_create(sys.argv[1], [sys.argv[2]], permanent=True)
        print(json.dumps({"url": url, "stats": service.stats()}))
        await service.aclose()
        await service.cache.aclose()


    if __name__ == "__main__":
        asyncio.run(main())
""")


@pytest.mark.slow
def test_two_processes_render_once(tmp_path: Path, redis_url: str,
                                   redis_server: RedisServer) -> None:
    script = tmp_path / "instance.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path / "data"),
        "VIDEO_DIR": str(tmp_path / "shared-videos"),
        "VIDEO_NARRATION": "false",
        "VIDEO_RENDER_POOL": "process",
        "PREGEN_ENABLED": "false",
        "APP_ENV": "test",
    }
    args = [sys.executable, str(script), "Two instances walk into _.", "A single render farm."]
    processes = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    urls = {o["url"] for o in outputs}
    stats = [o["stats"] for o in outputs]
    assert len(urls) == 1
    assert sum(s["generations"] for s in stats) == 1
    # the other process either waited on the lock or found the finished video
    assert sum(s["lock_waits"] + s["hits"] for s in stats) >= 1
    sha = urls.pop().split("/")[-1][:-4]
    assert (tmp_path / "shared-videos" / f"{sha}.mp4").is_file()
    client = redis_server.client()
    value = json.loads(str(client.get(f"video:{sha}")))
    assert value["permanent"] is True
    assert client.ttl(f"video:{sha}") == -1
    assert client.keys("punchline:video-lock:*") == []
