"""A web instance in VIDEO_WORKER_MODE=external and a real worker process: a played round's
winner video reaches the player through the Socket.IO channel; stats, /metrics and doctor
see the queue and the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Instances
from tests.video.mp4 import decode
from tests.worker.support import (
    channel_of,
    run_doctor,
    running_worker,
    video_of_a_won_round,
    worker_env,
)

pytestmark = pytest.mark.slow


async def test_an_external_worker_renders_a_played_win(
        instances: Instances, player: Any, tmp_path: Path, redis_url: str) -> None:
    shared = tmp_path / "shared-videos"  # the instance and the worker share the folder
    (web,) = instances(1, VIDEO_WORKER_MODE="external", VIDEO_DIR=str(shared))
    env = worker_env(tmp_path / "w", redis_url, VIDEO_DIR=str(shared),
                     SOCKETIO_CHANNEL=channel_of(web.process.pid))
    doctor = run_doctor({**env, "VIDEO_WORKER_MODE": "external"})
    assert "render workers: none seen" in doctor.stdout and doctor.returncode == 1
    with running_worker(tmp_path / "w", env):
        ready = await video_of_a_won_round(player, web)
        video = decode(shared / ready["video_url"].rsplit("/", 1)[1])
        assert video.frames > 24
        stats = httpx.get(f"{web.base_url}/api/video/stats").json()
        assert stats["queue"]["mode"] == "external"
        assert stats["queue"]["workers"] >= 1
        assert stats["queue"]["priorities"]["winner"]["renders"] == 1
        assert stats["generations"] == 0  # the web instance rendered nothing itself
        metrics = httpx.get(f"{web.base_url}/metrics").text
        assert 'punchline_video_renders_total{priority="winner"} 1.0' in metrics
        assert 'punchline_video_queue_depth{priority="speculative"}' in metrics
        doctor = run_doctor(env)
        assert "render workers: 1 alive" in doctor.stdout, doctor.stdout

