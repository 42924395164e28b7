"""Real worker processes on a real redis-server: a winner's video reaches its room, a SIGKILLed
worker's job is taken back, a broken render is dead-lettered and retried from the CLI."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.cards import Combination
from app.core.config import Settings
from app.video.combos import combination_of
from app.video.queue import RenderQueue
from app.video.queue_model import Priority, RenderOrder
from tests.support.app_server import REPO
from tests.video.fake_provider import FakeProvider
from tests.video.mp4 import decode
from tests.worker.support import RoomListener, running_worker, worker_env

pytestmark = pytest.mark.slow


def _combo(n: int) -> Combination:
    return combination_of(f"Worker test {n}: _.", [f"answer {n}"])


def _queue(redis_url: str, tmp_path: Path) -> RenderQueue:
    return RenderQueue(Settings(_env_file=None, redis_url=redis_url, data_dir=tmp_path / "d"))


async def test_a_worker_renders_a_winner_and_tells_the_room(tmp_path: Path,
                                                            redis_url: str) -> None:
    queue = _queue(redis_url, tmp_path)
    env = worker_env(tmp_path, redis_url)
    async with RoomListener(redis_url) as room:
        with running_worker(tmp_path, env):
            await queue.submit(RenderOrder.of(_combo(1), Priority.WINNER, room="ROOM1", round=2))
            [ready] = await room.wait_for("video_ready", "ROOM1", timeout=60)
    assert ready["data"]["round"] == 2
    url = ready["data"]["video_url"]
    video = decode(tmp_path / "videos" / url.rsplit("/", 1)[1])
    assert video.codec == "h264" and video.frames > 24
    stats = await queue.stats()
    assert stats["priorities"]["winner"]["renders"] == 1
    assert stats["priorities"]["winner"]["waiting"] == 0
    assert stats["priorities"]["winner"]["admitted"] == 0
    await queue.aclose()


class HeldProvider(FakeProvider):
    """A hosted API whose first job never finishes: its worker is killed while polling it."""

    def _job(self, job_id: str) -> dict[str, Any]:
        if job_id == "job-1":
            return {"id": job_id, "status": "running"}
        return super()._job(job_id)


async def test_a_winner_is_taken_back_after_its_worker_is_sigkilled(
        tmp_path: Path, redis_url: str, small_mp4: bytes) -> None:
    provider = HeldProvider(video=small_mp4, statuses=["succeeded"])
    await provider.start()
    env = worker_env(tmp_path, redis_url, VIDEO_PROVIDER="http",
                     HTTP_PROVIDER_SUBMIT_URL=f"{provider.base}/v1/jobs",
                     HTTP_PROVIDER_POLL_INTERVAL="0.2", HTTP_PROVIDER_DEADLINE="120",
                     HTTP_PROVIDER_FALLBACK_LOCAL="false", HTTP_PROVIDER_TOKEN="t",
                     HTTP_PROVIDER_ERROR_PATH="error.message")
    queue = _queue(redis_url, tmp_path)
    try:
        async with RoomListener(redis_url) as room:
            with running_worker(tmp_path, env, "first") as first:
                await queue.submit(RenderOrder.of(_combo(2), Priority.WINNER, room="KILL",
                                                  round=1))
                while not provider.requests_to("/v1/jobs/job-1"):  # the first worker polls
                    await asyncio.sleep(0.05)
                first.send_signal(signal.SIGKILL)
                first.wait()
                killed_at = asyncio.get_running_loop().time()
                with running_worker(tmp_path, env, "second"):
                    [ready] = await room.wait_for("video_ready", "KILL", timeout=40)
        taken = ready["at"] - killed_at
        # Heartbeat limit 6 s + a sweep every 2 s + the sweep's 0.5 s wait, plus start-up.
        assert taken < 15, f"picked up again after {taken:.1f} s"
        assert not room.of("video_failed")
    finally:
        await provider.stop()
        await queue.aclose()


class BrokenProvider(FakeProvider):
    """Every job fails until `fixed` is set."""

    fixed = False

    def _job(self, job_id: str) -> dict[str, Any]:
        if self.fixed:
            return super()._job(job_id)
        return {"id": job_id, "status": "failed", "error": {"message": "model exploded"}}


async def test_a_real_failure_is_retried_then_dead_lettered_and_the_cli_retries_it(
        tmp_path: Path, redis_url: str, small_mp4: bytes) -> None:
    provider = BrokenProvider(video=small_mp4, statuses=["succeeded"])
    await provider.start()
    env = worker_env(tmp_path, redis_url, VIDEO_PROVIDER="http",
                     HTTP_PROVIDER_SUBMIT_URL=f"{provider.base}/v1/jobs",
                     HTTP_PROVIDER_POLL_INTERVAL="0.05", HTTP_PROVIDER_FALLBACK_LOCAL="false",
                     HTTP_PROVIDER_TOKEN="t", HTTP_PROVIDER_ERROR_PATH="error.message",
                     VIDEO_JOB_RETRY_DELAY="0.2", VIDEO_JOB_MAX_FAILURES="3")
    queue = _queue(redis_url, tmp_path)
    try:
        async with RoomListener(redis_url) as room:
            with running_worker(tmp_path, env):
                await queue.submit(RenderOrder.of(_combo(3), Priority.WINNER, room="DEAD",
                                                  round=4))
                [failed] = await room.wait_for("video_failed", "DEAD", timeout=60)
                assert "model exploded" in failed["data"]["reason"]
                assert len(provider.requests_to("/v1/jobs", "POST")) == 3  # 3 attempts
                stats = await queue.stats()
                assert [d["room"] for d in stats["dead_letters"]] == ["DEAD"]
                assert stats["priorities"]["winner"]["dead_letters"] == 1
                provider.fixed = True
                cli = await asyncio.to_thread(
                    subprocess.run, [sys.executable, "-m", "app.cli", "videos", "retry"],
                    cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
                assert cli.returncode == 0, cli.stderr
                assert "1" in cli.stdout
                [ready] = await room.wait_for("video_ready", "DEAD", timeout=60)
        assert ready["data"]["round"] == 4  # a video that lands after the failure notice
        assert (await queue.stats())["dead_letters"] == []
    finally:
        await provider.stop()
        await queue.aclose()


@pytest.fixture
def small_mp4(tmp_path: Path) -> bytes:
    from app.video.render import RenderJob, render_video

    path = tmp_path / "small.mp4"
    render_video(RenderJob("Small _.", ("clip",)), str(path))
    return path.read_bytes()


