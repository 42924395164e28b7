"""Real worker processes (`python -m app.worker`) and a listener on the Socket.IO channel."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.cluster.test_instances import seat
from tests.cluster.test_rolling_restart import win_round
from tests.support.app_server import REPO

CHANNEL = "punchline-socketio"


def channel_of(pid: int) -> str:
    """The instances fixture gives its servers a channel of their own: read it back."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"SOCKETIO_CHANNEL="):
            return item.split(b"=", 1)[1].decode()
    raise AssertionError("the instance has no SOCKETIO_CHANNEL")


def run_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli doctor` with `env`, as an operator would run it."""
    return subprocess.run([sys.executable, "-m", "app.cli", "doctor"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


async def video_of_a_won_round(player: Any, web: Any) -> dict[str, Any]:
    """Three players on `web` play one round; the `video_ready` all of them got for it."""
    players = await seat(player, [web], ["Ada", "Bo", "Cy"])
    await players[0].call("start_game")
    won = await win_round(players, 1)
    ready: dict[str, Any] = {}
    for p in players:
        ready = await p.wait_for("video_ready", lambda v: v["round"] == won["round"],
                                 timeout=60)
    return ready


def worker_env(workdir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": redis_url,
            "DATA_DIR": str(workdir / "data"), "VIDEO_DIR": str(workdir / "videos"),
            "VIDEO_NARRATION": "false", "PREGEN_ENABLED": "false", "LOG_LEVEL": "INFO",
            "SOCKETIO_CHANNEL": CHANNEL, **extra}


def start_worker(workdir: Path, env: dict[str, str], name: str = "worker"
                 ) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / f"{name}.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen([sys.executable, "-m", "app.worker"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


@contextmanager
def running_worker(workdir: Path, env: dict[str, str], name: str = "worker"
                   ) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(workdir, env, name)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class RoomListener:
    """Collects the emits published on the Socket.IO Redis channel (what every instance gets)."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(self.url)
        pubsub = client.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._ready.set()
        try:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                data = json.loads(message["data"])
                if data.get("method") == "emit":
                    self.events.append({"event": data["event"], "room": data["room"],
                                        "data": data["data"][0], "at": asyncio.get_running_loop(
                                        ).time()})
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def __aenter__(self) -> RoomListener:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def of(self, event: str, room: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event
                and (room is None or e["room"] == f"room:{room}")]

    async def wait_for(self, event: str, room: str, count: int = 1, timeout: float = 60.0
                       ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(self.of(event, room)) < count:
            if loop.time() > end:
                raise AssertionError(f"{event} for room {room} not seen; got {self.events}")
            await asyncio.sleep(0.05)
        return self.of(event, room)
