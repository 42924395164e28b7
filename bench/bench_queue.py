"""The durable render queue with real worker processes (`python -m app.worker`) on a real
redis-server: render throughput with one worker against two, an honest room's wait while four
rooms flood wins (fairness), and a winner whose worker is SIGKILLed in the middle of a render.

Orders are submitted the way a web instance does (`RenderQueue.submit`), and a video counts as
delivered when its `video_ready` is published on the Socket.IO channel that every instance
listens to. Run alone: `.venv/bin/python -m bench --only bench_queue`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from app.core.cards import Combination
from app.video.combos import combination_of
from app.video.queue import RenderQueue
from app.video.queue_model import Priority, RenderOrder
from bench._support import REPO, make_settings, quantile, redis_server, scaled

CHANNEL = "bench-queue"
QUEUE = "bench-video"


class Listener:
    """video_ready / video_failed as published for every instance: (event, room, round) -> t."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[tuple[str, str, int], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        client = aioredis.Redis.from_url(self.url)
        pubsub = client.pubsub()
        await pubsub.subscribe(CHANNEL)

        async def listen() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    data = json.loads(message["data"])
                    key = (data["event"], data["room"].removeprefix("room:"),
                           int(data["data"][0]["round"]))
                    self.seen.setdefault(key, time.perf_counter())

        self._task = asyncio.create_task(listen())

    async def wait(self, keys: list[tuple[str, str, int]], timeout: float) -> None:
        end = time.perf_counter() + timeout
        while any(k not in self.seen for k in keys):
            if time.perf_counter() > end:
                missing = [k for k in keys if k not in self.seen]
                raise TimeoutError(f"{len(missing)} videos not delivered, e.g. {missing[:3]}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def combo(tag: str, n: int) -> Combination:
    return combination_of(f"Bench {tag} {n}: the best thing is _.", [f"answer {tag}-{n}"])


def start_workers(n: int, env: dict[str, str], workdir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        with open(workdir / f"worker{i}-{uuid.uuid4().hex[:6]}.log", "wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "app.worker"], cwd=REPO,
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def wait_workers(queue: RenderQueue, n: int) -> None:
    end = time.perf_counter() + 60
    while len(await queue.workers()) < n:
        if time.perf_counter() > end:
            raise TimeoutError("workers did not start")
        await asyncio.sleep(0.1)


async def throughput(queue: RenderQueue, listener: Listener, env: dict[str, str],
                     workdir: Path, workers: int, videos: int) -> dict[str, Any]:
    procs = start_workers(workers, env, workdir)
    try:
        await wait_workers(queue, workers)
        room = f"T{workers}"
        keys = [("video_ready", room, n) for n in range(videos)]
        started = time.perf_counter()
        for n in range(videos):
            await queue.submit(RenderOrder.of(combo(room, n), Priority.WINNER, room=room, round=n))
        await listener.wait(keys, 300)
        seconds = time.perf_counter() - started
    finally:
        stop_workers(procs)
    return {"workers": workers, "videos": videos, "seconds": round(seconds, 2),
            "videos_per_second": round(videos / seconds, 2)}


async def fairness(queue: RenderQueue, listener: Listener, env: dict[str, str],
                   workdir: Path, flood: int, honest: int) -> dict[str, Any]:
    procs = start_workers(1, env, workdir)
    try:
        await wait_workers(queue, 1)
        for n in range(flood):  # four rooms win `flood` rounds each, all at once
            for r in range(4):
                room = f"FLOOD{r}"
                await queue.submit(RenderOrder.of(combo(room, n), Priority.WINNER, room=room,
                                                  round=n))
        submitted: dict[int, float] = {}
        for n in range(honest):  # the honest room wins a round every 1.5 s meanwhile
            submitted[n] = time.perf_counter()
            await queue.submit(RenderOrder.of(combo("HONEST", n), Priority.WINNER,
                                              room="HONEST", round=n))
            await asyncio.sleep(1.5)
        await listener.wait([("video_ready", "HONEST", n) for n in range(honest)], 300)
        flood_keys = [("video_ready", f"FLOOD{r}", n) for r in range(4) for n in range(flood)]
        await listener.wait(flood_keys, 600)
    finally:
        stop_workers(procs)
    waits = sorted(listener.seen[("video_ready", "HONEST", n)] - submitted[n]
                   for n in range(honest))
    flood_done = max(listener.seen[k] for k in flood_keys) - min(submitted.values())
    return {"flood_rooms": 4, "flood_wins_per_room": flood, "honest_wins": honest,
            "honest_p50_s": round(quantile(waits, 0.5), 2),
            "honest_p95_s": round(quantile(waits, 0.95), 2),
            "honest_max_s": round(waits[-1], 2), "flood_drained_s": round(flood_done, 1)}


async def crash(queue: RenderQueue, listener: Listener, env: dict[str, str],
                workdir: Path) -> dict[str, Any]:
    """SIGKILL the worker that is rendering a winner; the other worker takes it back."""
    env = {**env, "VIDEO_RESOLUTION": "720p"}  # longer renders: the kill lands mid-render
    procs = start_workers(2, env, workdir)
    try:
        await wait_workers(queue, 2)
        victim = procs[0]
        ids = {wid for wid, info in (await queue.workers()).items()
               if (info.get("metadata") or {}).get("pid") == victim.pid}
        rounds = 6
        for n in range(rounds):
            await queue.submit(RenderOrder.of(combo("CRASH", n), Priority.WINNER, room="CRASH",
                                              round=n))
        killed: RenderOrder | None = None
        end = time.perf_counter() + 60
        while killed is None and time.perf_counter() < end:
            for job_id in await queue.redis.lrange(f"saq:{QUEUE}:active", 0, -1):
                job = await queue.saq._get_job_by_id(job_id)
                if job is not None and job.worker_id in ids and job.status == "active":
                    killed = RenderOrder.from_dict(job.kwargs["order"])  # type: ignore[index]
                    break
            else:
                await asyncio.sleep(0.01)
        if killed is None:
            raise RuntimeError("the victim never took a job")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = time.perf_counter()
        await listener.wait([("video_ready", "CRASH", n) for n in range(rounds)], 120)
        failed = [k for k in listener.seen if k[0] == "video_failed" and k[1] == "CRASH"]
    finally:
        stop_workers(procs)
    delivered = listener.seen[("video_ready", "CRASH", killed.round)] - killed_at
    return {"rounds": rounds, "delivered": rounds, "failed": len(failed),
            "killed_job_delivered_after_s": round(delivered, 2)}


async def main_async() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp, redis_server(Path(tmp)) as rs:
        workdir = Path(tmp)
        settings = make_settings(rs.url, workdir / "data", video_queue_name=QUEUE)
        env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": rs.url,
               "DATA_DIR": str(workdir / "data"), "VIDEO_DIR": str(workdir / "videos"),
               "VIDEO_QUEUE_NAME": QUEUE, "SOCKETIO_CHANNEL": CHANNEL, "LOG_LEVEL": "WARNING",
               "VIDEO_NARRATION": "false", "PREGEN_ENABLED": "false",
               "VIDEO_RENDER_POOL": "process", "VIDEO_RENDER_WORKERS": "1"}
        queue = RenderQueue(settings)
        listener = Listener(rs.url)
        await listener.start()
        try:
            videos = scaled(40)
            one = await throughput(queue, listener, env, workdir, 1, videos)
            two = await throughput(queue, listener, env, workdir, 2, videos)
            fair = await fairness(queue, listener, env, workdir, scaled(20), scaled(10, 5))
            crashed = await crash(queue, listener, env, workdir)
        finally:
            await listener.stop()
            await queue.aclose()
    ratio = two["videos_per_second"] / one["videos_per_second"]
    return {
        "throughput": {"one_worker": one, "two_workers": two, "ratio": round(ratio, 2)},
        "fairness": fair, "crash": crashed, "cpus": os.cpu_count(),
        "targets": [
            {"metric": "honest room's winner p95 while 4 rooms flood (s)",
             "value": fair["honest_p95_s"], "op": "<=", "target": 10,
             "met": fair["honest_p95_s"] <= 10},
            {"metric": "SIGKILLed worker's winner delivered after (s)",
             "value": crashed["killed_job_delivered_after_s"], "op": "<=", "target": 15,
             "met": crashed["killed_job_delivered_after_s"] <= 15 and crashed["failed"] == 0},
            {"metric": "two workers / one worker (videos/s)", "value": round(ratio, 2),
             "op": ">", "target": 1.0, "met": ratio > 1.0},
        ],
    }


def run() -> dict[str, Any]:
    return asyncio.run(main_async())


def print_summary(results: dict[str, Any]) -> None:
    t, f, c = results["throughput"], results["fairness"], results["crash"]
    print(f"throughput: 1 worker {t['one_worker']['videos_per_second']} videos/s, "
          f"2 workers {t['two_workers']['videos_per_second']} videos/s "
          f"(x{t['ratio']}, {results['cpus']} CPUs, {t['one_worker']['videos']} videos each)")
    print(f"fairness: 4 rooms x {f['flood_wins_per_room']} wins at once, honest room "
          f"{f['honest_wins']} wins 1.5 s apart: p50 {f['honest_p50_s']} s, "
          f"p95 {f['honest_p95_s']} s, max {f['honest_max_s']} s; flood drained in "
          f"{f['flood_drained_s']} s (1 worker)")
    print(f"crash: worker SIGKILLed mid-render; its winner delivered "
          f"{c['killed_job_delivered_after_s']} s later; {c['delivered']}/{c['rounds']} "
          f"delivered, {c['failed']} video_failed")
