"""The durable render queue: SAQ on Redis, with the fair-admission layer in front.

    queue = RenderQueue(settings)
    await queue.submit(RenderOrder.of(combo, Priority.WINNER, room="ABCD", round=3))

`submit` puts the order in the fair backlog (`app/video/queue_fair.py`), then admits orders
into SAQ's queue a few at a time. Workers (`app/video/queue_worker.py`) take SAQ jobs, send a
heartbeat every second, and admit more as they go. A job whose worker stops sending heartbeats
(SIGKILL, a lost machine) is swept back into the queue by any other worker within
`video_job_heartbeat` + a third of it (+ the sweep's wait for an abort acknowledgement).

Everything here lives under one prefix (`video_queue_name`): SAQ's keys `saq:<name>:*` and
`saq:job:<name>:*`, and ours `{<name>}:*` (backlog, admitted orders, dead letters, counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job
from saq.job import Status
from saq.queue.redis import RedisQueue

from app.cache.connection import make_async_client
from app.core.config import Settings
from app.video.deadlines import video_deadline_seconds
from app.video.queue_fair import ADMIT_DEPTH, RedisBacklog
from app.video.queue_model import Priority, RenderOrder

logger = logging.getLogger(__name__)

JOB_FUNCTION = "render_order"
RETRY_MAX_DELAY = 30.0  # seconds: retries back off 1, 2, 4, ... up to this
TRANSIENT_RETRIES = 1000  # SAQ's attempt limit; our own count of render errors decides earlier
FINISHED_TTL = 60  # seconds SAQ keeps a finished job (dedup of a late duplicate enqueue)
SWEEP_ABORT_WAIT = 0.5  # seconds a sweep waits for a swept job's worker (it is dead) to answer
QUEUE_SOCKET_TIMEOUT = 5.0  # the queue's blocking dequeue waits 1 s; the cache's 0.25 s is short
COUNTERS = ("renders", "retries", "dropped", "dead", "failures")


def read_workers(client: SyncRedis, name: str) -> list[dict[str, Any]]:
    """Metadata of the workers whose SAQ worker info is fresh (sync: for `doctor`)."""
    now_ms = int(time.time() * 1000)
    keys = [k for k in client.zrangebyscore(f"saq:{name}:stats", now_ms, "+inf")
            if isinstance(k, bytes | str)]
    if not keys:
        return []
    workers = []
    for raw in client.mget(keys):
        if raw is None:
            continue
        info = json.loads(raw)
        workers.append(dict(info.get("metadata") or {}))
    return workers


class ResilientRedisQueue(RedisQueue):
    """SAQ's Redis queue whose worker-side calls wait quietly while Redis is down.

    SAQ's worker loop would otherwise spin on a failing dequeue and log every upkeep tick.
    """

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        try:
            return await super().dequeue(timeout, poll_interval)
        except (RedisError, OSError):
            await asyncio.sleep(1.0)
            return None

    async def schedule(self, lock: int = 1) -> list[str]:
        try:
            return await super().schedule(lock)
        except (RedisError, OSError):
            return []

    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_WAIT) -> list[str]:
        try:
            swept = await super().sweep(lock, abort=SWEEP_ABORT_WAIT)
        except (RedisError, OSError):
            return []
        if swept:
            logger.warning("took back %d job(s) whose worker stopped sending heartbeats: %s",
                           len(swept), ", ".join(swept))
        return swept

    async def write_worker_info(self, worker_id: str, info: Any, ttl: int) -> None:
        with contextlib.suppress(RedisError, OSError):
            await super().write_worker_info(worker_id, info, ttl)


class RenderQueue:
    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis: Redis = redis if redis is not None else make_async_client(
            settings, socket_timeout=QUEUE_SOCKET_TIMEOUT)
        self.name = settings.video_queue_name
        self.saq = ResilientRedisQueue(self.redis, name=self.name)
        self.backlog = RedisBacklog(self.redis, self.name, settings.video_queue_speculative_max)
        self._prefix = f"{{{self.name}}}"
        self.dead_key = f"{self._prefix}:dead"
        self.counts_key = f"{self._prefix}:counts"
        self.timeout = int(video_deadline_seconds(settings)) + 1
        self._admitting = asyncio.Lock()

    # --- enqueue --------------------------------------------------------------------------------
    async def submit(self, order: RenderOrder) -> int:
        """Put `order` in the fair backlog and admit what may go; raises RedisError when down.

        Returns 1 (waiting), 0 (already waiting) or -1 (dropped: speculative beyond its bound).
        """
        result = await self.backlog.push(order)
        if result < 0:
            await self.count("dropped", order.priority)
        await self.admit()
        return result

    async def admit(self) -> int:
        """Move orders from the backlog into SAQ's queue (priority, then rooms in turn)."""
        admitted = 0
        async with self._admitting:
            queued = await self.saq.count("queued")
            for priority in Priority:
                while queued < ADMIT_DEPTH[priority]:
                    order = await self.backlog.pop(priority)
                    if order is None:
                        break
                    await self.enqueue(order)
                    queued += 1
                    admitted += 1
                if await self.backlog.waiting(priority) > 0:
                    break  # lower priorities wait until this one's backlog is admitted
        return admitted

    async def enqueue(self, order: RenderOrder) -> None:
        """The SAQ job of an admitted order (deduplicated by its key while it is incomplete)."""
        winner = order.priority is Priority.WINNER
        heartbeat = self.settings.video_job_heartbeat
        await self.saq.enqueue(
            JOB_FUNCTION, key=order.job_key, order=order.to_dict(), timeout=self.timeout,
            heartbeat=heartbeat, retries=TRANSIENT_RETRIES if winner else 1,
            retry_delay=self.settings.video_job_retry_delay, retry_backoff=RETRY_MAX_DELAY,
            ttl=FINISHED_TTL)

    async def recover(self, older_than: float = 30.0) -> int:
        """Re-enqueue admitted orders whose job is gone (an instance died between the two)."""
        recovered = 0
        for order in await self.backlog.admitted(older_than):
            job = await self.saq.job(order.job_key)
            if job is None:
                await self.enqueue(order)
                recovered += 1
            elif job.status in {Status.COMPLETE, Status.FAILED, Status.ABORTED}:
                await self.backlog.done(order)
        if recovered:
            logger.warning("re-enqueued %d admitted render job(s) that had no job", recovered)
        return recovered

    # --- counters and dead letters --------------------------------------------------------------
    async def count(self, name: str, priority: Priority, by: int = 1) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hincrby(self.counts_key, f"{name}:{priority.label}", by)

    async def dead_letter(self, order: RenderOrder, error: str, failures: int) -> None:
        record = {"order": order.to_dict(), "error": error[:500], "failures": failures,
                  "at": time.time()}
        await self.redis.hset(self.dead_key, order.job_key, json.dumps(record))
        await self.count("dead", order.priority)

    async def dead_letters(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.dead_key)
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

    async def retry_dead(self, keys: list[str] | None = None) -> list[str]:
        """Submit dead-lettered orders again (all, or those of `keys`); returns their keys."""
        letters = await self.dead_letters()
        chosen = [k for k in letters if keys is None or k in keys]
        for key in chosen:
            order = RenderOrder.from_dict({**letters[key]["order"], "enqueued_at": time.time()})
            await self.redis.hdel(self.dead_key, key)
            await self.submit(order)
        return chosen

    # --- observation ----------------------------------------------------------------------------
    async def workers(self) -> dict[str, Any]:
        """Workers whose SAQ heartbeat (worker info, every few seconds) is fresh."""
        info = await self.saq.info()
        return dict(info["workers"])

    async def stats(self) -> dict[str, Any]:
        now = time.time()
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v)
                  for k, v in (await self.redis.hgetall(self.counts_key)).items()}
        dead = await self.dead_letters()
        priorities: dict[str, Any] = {}
        for p in Priority:
            oldest = await self.backlog.oldest(p)
            priorities[p.label] = {
                "waiting": await self.backlog.waiting(p),
                "admitted": await self.backlog.admitted_count(p),
                "oldest_age_seconds": round(now - oldest, 3) if oldest is not None else 0.0,
                "dead_letters": sum(1 for r in dead.values()
                                    if r["order"].get("priority") == p.label),
                **{name: counts.get(f"{name}:{p.label}", 0) for name in COUNTERS},
            }
        info = await self.saq.info()
        return {"backend": "redis", "queue": self.name, "priorities": priorities,
                "jobs": {"queued": info["queued"], "active": info["active"],
                         "scheduled": info["scheduled"]},
                "workers": len(info["workers"]),
                "dead_letters": [{"key": k, "error": r["error"], "failures": r["failures"],
                                  "room": r["order"].get("room"), "at": r["at"]}
                                 for k, r in sorted(dead.items())[:50]]}

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.saq.disconnect()
