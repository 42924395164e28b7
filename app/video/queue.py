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

Which Redis: VIDEO_QUEUE_REDIS_URL when set, else REDIS_URL (`queue_redis_url`). One server or
a Sentinel service; never a Cluster, where SAQ 0.26 cannot run even with a hash-tagged name:
its abort key (`saq:abort:<job key>`) carries no queue name, so enqueue's script is CROSSSLOT,
its abort (the sweep of a dead worker's job) PUBLISHes inside a MULTI pipeline, which redis-py's
cluster pipeline refuses, and its `disconnect` needs a `connection_pool` a RedisCluster lacks.
So with a Cluster REDIS_URL and no VIDEO_QUEUE_REDIS_URL there is no durable queue: web
instances render on their local runner and `python -m app.worker` refuses to start.

A failover loses what the old primary had not yet passed on to its replica (replication is
asynchronous). `locate` lets the dispatcher make sure a winner's order is not among it: one
script reads where the orders are (waiting, admitted, their SAQ job) and writes a fence, and
`WAIT 1 <ms>` follows on the same connection. Replication is one ordered stream, so a replica
that has the fence has every write the server took before it, whichever connection sent them;
and since the script reads the order on the very server the fence went to, a stale pooled link
to another server cannot confirm it by mistake (app/video/dispatch.py holds what is not confirmed).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job
from saq.job import Status
from saq.queue.redis import RedisQueue

from app.cache.connection import make_async_client, mask_url
from app.cache.replication import (
    Replication,
    ReplicaView,
    ScriptAndInspect,
    ScriptAndWait,
    ScriptCall,
    wait_ms_for,
)
from app.core.config import Settings
from app.core.redis_url import topology_of, uses_tls
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
FINISHED_STATUSES = frozenset({Status.COMPLETE, Status.FAILED, Status.ABORTED})


class Placed(enum.Enum):
    """Where `RenderQueue.locate` found an order, on the primary its pipeline reached."""

    CONFIRMED = "confirmed"  # waiting, admitted or queued, and a replica has it (or none can)
    FINISHED = "finished"  # its job has finished: rendered (and its room told), or given up
    UNCONFIRMED = "unconfirmed"  # there, but no replica confirmed it in time
    MISSING = "missing"  # not there: lost, or sent to another server (submit it again)


# The fence (a write: the WAIT after it covers everything this server took before it), and
# where each order is. KEYS: counters, waiting set, admitted hash, then each order's SAQ job.
# ARGV: the orders' job keys. Per order: 1 (waiting or admitted), its job record, or 0.
_LOCATE = """
redis.call('HINCRBY', KEYS[1], 'fences', 1)
local found = {}
for i, key in ipairs(ARGV) do
  if redis.call('SISMEMBER', KEYS[2], key) == 1 or redis.call('HEXISTS', KEYS[3], key) == 1 then
    found[i] = 1
  else
    found[i] = redis.call('GET', KEYS[3 + i]) or 0
  end
end
return found
"""


class NoQueueRedis(Exception):
    """There is no Redis the render queue can use; the message says why and what to set."""


def queue_redis_url(settings: Settings) -> str | None:
    """VIDEO_QUEUE_REDIS_URL, else REDIS_URL; None when neither can hold the queue (REDIS_URL
    is memory://, or a Cluster, and VIDEO_QUEUE_REDIS_URL is unset)."""
    if settings.video_queue_redis_url:
        return settings.video_queue_redis_url
    if topology_of(settings.redis_url) in {"memory", "cluster"}:
        return None
    return settings.redis_url


def no_queue_reason(settings: Settings) -> str:
    """Why `queue_redis_url` is None, and what to set (password-free)."""
    if topology_of(settings.redis_url) == "cluster":
        return (f"REDIS_URL ({mask_url(settings.redis_url)}) is a Redis Cluster, where the "
                "render queue (SAQ) cannot run; set VIDEO_QUEUE_REDIS_URL to a redis://, "
                "rediss://, redis+sentinel:// or rediss+sentinel:// URL for it (docs/videos.md)")
    return "REDIS_URL is memory://: there is no durable render queue"


def queue_settings(settings: Settings) -> Settings:
    """`settings` as the queue's Redis client sees them: REDIS_URL is the queue's Redis.

    VIDEO_QUEUE_REDIS_URL carries its own database (REDIS_DB is REDIS_URL's), and takes the
    REDIS_TLS_* files only when it is rediss:// itself. Raises NoQueueRedis."""
    url = queue_redis_url(settings)
    if url is None:
        raise NoQueueRedis(no_queue_reason(settings))
    if url == settings.redis_url:
        return settings
    tls = uses_tls(url)
    return settings.model_copy(update={
        "redis_url": url, "redis_db": None,
        "redis_tls_ca_file": settings.redis_tls_ca_file if tls else None,
        "redis_tls_cert_file": settings.redis_tls_cert_file if tls else None,
        "redis_tls_key_file": settings.redis_tls_key_file if tls else None})


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


# The active list, read by one sweeper per `lock` seconds (SAQ 0.26's sweep script).
_ACTIVE_JOBS = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SETEX', KEYS[1], ARGV[1], 1)
  for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    id_jobs[i] = {v, redis.call('GET', v)}
  end
end
return id_jobs
"""


class ResilientRedisQueue(RedisQueue):
    """SAQ's Redis queue whose worker-side calls wait quietly while Redis is down, and whose
    sweep leaves a job a worker has just taken alone.

    SAQ's worker loop would otherwise spin on a failing dequeue and log every upkeep tick.
    SAQ's own sweep (0.26) takes any job of the active list whose status is not "active" for
    abandoned; but a job is still "queued" there from a worker's BLMOVE until that worker's
    status update a round trip later. A sweep in between (a worker starting on a backlog makes
    one at once) re-queued a running job, which then ran twice (tobymao/saq#277). Here such a
    job is swept only if this process's previous sweep saw it so too, at the same attempt.
    """

    def __init__(self, redis: Redis, name: str) -> None:
        super().__init__(redis, name=name)
        self._active_jobs = redis.register_script(_ACTIVE_JOBS)
        self._unclaimed: set[tuple[str, int]] = set()  # (job id, attempts) "queued" in active

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
            swept = await self._take_back(lock)
        except (RedisError, OSError):
            return []
        if swept:
            logger.warning("took back %d job(s) whose worker stopped sending heartbeats: %s",
                           len(swept), ", ".join(swept))
        return swept

    async def _take_back(self, lock: int) -> list[str]:
        """SAQ's sweep, except for the first sight of a job still "queued" in the active list."""
        id_jobs = await self._active_jobs(keys=[self._sweep, self._active], args=[lock])
        swept: list[str] = []
        unclaimed: set[tuple[str, int]] = set()
        for raw_id, raw_job in id_jobs:
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            job = self.deserialize(raw_job)
            if job is None:  # its record is gone: only the lists still name it
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self._active, 0, job_id)
                    pipe.zrem(self._incomplete, job_id)
                    await pipe.execute()
                swept.append(job_id)
                continue
            if job.status == Status.ACTIVE and not job.stuck:
                continue
            if job.status == Status.QUEUED and (job_id, job.attempts) not in self._unclaimed:
                unclaimed.add((job_id, job.attempts))  # a worker may be marking it active now
                continue
            swept.append(job_id)
            await self.abort(job, error=self.swept_error_message)
            with contextlib.suppress(asyncio.TimeoutError):
                await job.refresh(SWEEP_ABORT_WAIT)  # its worker, if alive, acknowledges
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        if id_jobs:  # this process held the sweep's lock: what it saw is the latest view
            self._unclaimed = unclaimed
        return swept

    async def write_worker_info(self, worker_id: str, info: Any, ttl: int) -> None:
        with contextlib.suppress(RedisError, OSError):
            await super().write_worker_info(worker_id, info, ttl)


class RenderQueue:
    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        """Raises NoQueueRedis when `redis` is not given and no Redis can hold the queue."""
        self.settings = settings
        # For messages: the queue's Redis, password masked.
        self.where = mask_url(queue_redis_url(settings) or settings.redis_url)
        self.redis: Redis = redis if redis is not None else make_async_client(
            queue_settings(settings), socket_timeout=QUEUE_SOCKET_TIMEOUT)
        self.name = settings.video_queue_name
        self.saq = ResilientRedisQueue(self.redis, name=self.name)
        self.backlog = RedisBacklog(self.redis, self.name, settings.video_queue_speculative_max)
        self._prefix = f"{{{self.name}}}"
        self.dead_key = f"{self._prefix}:dead"
        self.counts_key = f"{self._prefix}:counts"
        self.timeout = int(video_deadline_seconds(settings)) + 1
        self._admitting = asyncio.Lock()
        self.wait_ms = wait_ms_for(settings)  # 0 (REDIS_WAIT_MS=0): no replica is waited for
        self.replicas = ReplicaView()  # of the queue's primary, read by `locate`

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
            elif job.status in FINISHED_STATUSES:
                await self.backlog.done(order)
        if recovered:
            logger.warning("re-enqueued %d admitted render job(s) that had no job", recovered)
        return recovered

    # --- surviving a failover -------------------------------------------------------------------
    @property
    def waits(self) -> bool:
        """Does `locate` wait for replicas (REDIS_WAIT_MS > 0)?"""
        return self.wait_ms > 0

    async def locate(self, orders: Sequence[RenderOrder]) -> list[Placed]:
        """Where each order is on the queue's primary, and whether a replica has it: one round
        trip (script + WAIT), plus `INFO replication` at most once a second.

        A primary never seen with replicas has nothing to wait for: all CONFIRMED, no command.
        While the primary we last saw with replicas has none (a failover under way, or its
        replica is gone), the script goes with INFO on the same connection instead of a WAIT:
        an order on that old primary is UNCONFIRMED, one on a new primary without a replica yet
        is CONFIRMED (nothing could confirm it). Raises RedisError / OSError."""
        view = self.replicas
        if view.stale:
            view.seen(await Replication(view.replicated_primary).aio(self.redis))
        if not orders or (view.replicas == 0 and not view.replicated_primary):
            return [Placed.CONFIRMED] * len(orders)
        call = ScriptCall(_LOCATE, (
            self.counts_key, self.backlog.waiting_set,
            self.backlog.admitted_hash, *(self.saq.job_id(o.job_key) for o in orders)),
            tuple(o.job_key for o in orders))
        if view.replicas > 0:
            found, acked = await ScriptAndWait(call, self.wait_ms).aio(self.redis)
            confirmed = acked >= 1
            if not confirmed:
                view.look_again()
        else:
            found, took = await ScriptAndInspect(call).aio(self.redis)
            confirmed = not view.took_at_risk(took)
        return [self._placed(raw, confirmed) for raw in found]

    def _placed(self, raw: Any, confirmed: bool) -> Placed:
        if raw == 0:
            return Placed.MISSING
        if raw != 1:  # its job's record
            job = self.saq.deserialize(raw)
            if job is not None and job.status in FINISHED_STATUSES:
                return Placed.FINISHED
        return Placed.CONFIRMED if confirmed else Placed.UNCONFIRMED

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
