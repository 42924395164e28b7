"""Winner render orders during a real Redis outage (own redis-server, real app processes).

- Redis frozen (SIGSTOP) while a round is won: the embedded worker cannot reach the queue, so
  the winner is journaled and rendered locally; every player gets `video_ready`, and after the
  thaw the permanent cache entry is in Redis.
- An instance that journaled a winner during the outage is SIGKILLed before Redis returns:
  another instance on the same host and DATA_DIR adopts its journal when Redis answers, and the
  winner is rendered from the queue.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from app.cache.keys import key_for
from tests.cluster.conftest import Instances
from tests.cluster.test_instances import seat
from tests.cluster.test_rolling_restart import win_round
from tests.support.redis_server import RedisServer
from tests.video.mp4 import decode
from tests.worker import support
from tests.worker.support import RoomListener

pytestmark = pytest.mark.slow  # Redis is frozen for about 10 s in each

FROZEN_SECONDS = 10.0


async def test_a_winner_during_a_freeze_is_rendered_here_and_cached_after_the_thaw(
        instances: Instances, player: Any, own_redis: RedisServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (web,) = instances(1, redis=own_redis.url, DATA_DIR=str(data))
    players = await seat(player, [web], ["Ada", "Bo", "Cy"])
    await players[0].call("start_game")
    own_redis.freeze()
    frozen = time.monotonic()
    try:
        won = await win_round(players, 1)
        readies = [await p.wait_for("video_ready", lambda v: v["round"] == won["round"],
                                    timeout=60) for p in players]
        await asyncio.sleep(max(0.0, FROZEN_SECONDS - (time.monotonic() - frozen)))
    finally:
        own_redis.thaw()
    ready = readies[0]
    assert all(r["video_url"] == ready["video_url"] for r in readies)
    key = key_for(ready["black_card"], ready["white_cards"])
    client = own_redis.client()
    deadline = time.monotonic() + 30
    while client.exists(key) == 0:  # the cache's journal is replayed once Redis answers
        assert time.monotonic() < deadline, f"{key} never reached Redis:\n{web.log[-3000:]}"
        await asyncio.sleep(0.2)
    assert client.ttl(key) == -1  # permanent
    video = decode(data / "videos" / ready["video_url"].rsplit("/", 1)[1])
    assert video.frames > 24
    assert not any(p.all("video_failed") for p in players), web.log[-3000:]


async def test_a_journaled_winner_of_a_killed_instance_is_adopted_when_redis_returns(
        instances: Instances, player: Any, own_redis: RedisServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "shared-data"  # one host, one DATA_DIR: the journals are visible
    (a,) = instances(1, redis=own_redis.url, DATA_DIR=str(data))
    monkeypatch.setattr(support, "CHANNEL", support.channel_of(a.process.pid))
    players = await seat(player, [a], ["Ada", "Bo", "Cy"])
    await players[0].call("start_game")
    jobs = data / "video-jobs"
    own_redis.freeze()
    frozen = time.monotonic()
    try:
        won = await win_round(players, 1)
        deadline = time.monotonic() + 30
        while not list(jobs.glob("*.jsonl")):
            assert time.monotonic() < deadline, f"no journal:\n{a.log[-3000:]}"
            await asyncio.sleep(0.01)
        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
        journal = list(jobs.glob("*.jsonl"))
        await asyncio.sleep(max(0.0, FROZEN_SECONDS - (time.monotonic() - frozen)))
    finally:
        own_redis.thaw()
    assert journal, "the instance finished the render before it was killed; nothing to adopt"
    async with RoomListener(own_redis.url) as room:
        (b,) = instances(1, redis=own_redis.url, DATA_DIR=str(data))
        [ready] = await room.wait_for("video_ready", players[0].room_code, timeout=60)
    assert ready["data"]["round"] == won["round"]
    assert "journaled render order(s) of a dead process joined the queue" in b.log
    assert not list(jobs.glob("*.jsonl*")), list(jobs.iterdir())
    video = decode(data / "videos" / ready["data"]["video_url"].rsplit("/", 1)[1])
    assert video.frames > 24
    assert not room.of("video_failed")
