"""Where a web instance sends its render orders: the durable queue, or its own memory.

    dispatcher = VideoDispatcher(settings, service, emit)   # emit: the Socket.IO server's
    await dispatcher.start()
    await dispatcher.submit(RenderOrder.of(combo, Priority.WINNER, room=code, round=n))
    await dispatcher.stop()

- With a Redis for the queue (VIDEO_QUEUE_REDIS_URL, else a REDIS_URL that is neither
  memory:// nor a Cluster): orders go to `RenderQueue`. In `embedded` mode
  (`VIDEO_WORKER_MODE`, the default) this process also runs a `QueueWorker` on that queue, so
  `make run` alone makes videos; in `external` mode `python -m app.worker` processes do.
- With memory://, or a Cluster REDIS_URL and no VIDEO_QUEUE_REDIS_URL (SAQ cannot run on a
  Cluster: app/video/queue.py): a `LocalRunner` in this process, same priorities and fairness;
  with a Cluster one warning says so at start-up.
- While Redis is down (the cache's breaker is open, unless the queue has a Redis of its own;
  or the queue call fails): a winner order is
  written to the local journal and run by the local runner at once; speculative and popular
  orders are run locally too in embedded mode, and dropped in external mode. When Redis answers
  again, journals of dead processes join the queue (`OrderJournal.adopt_dead`).
- A Redis failover: a winner order the queue took is then located on the queue's primary and
  waited for (`RenderQueue.locate`: a fence and `WAIT 1 <ms>` when the primary has replicas).
  One that no replica confirmed is *held*: journaled (as above, so that it survives this
  process) and looked at again every `REDRIVE_EVERY` s; one found missing (lost with the old
  primary) is submitted again. It is released when a replica confirms it, or when its job has
  finished (a finished job is never submitted again: that would tell its room twice).
  REDIS_WAIT_MS=0 turns this off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from app.core.config import Settings
from app.core.redis_url import topology_of
from app.video.queue import (
    FINISHED_TTL,
    Placed,
    RenderQueue,
    no_queue_reason,
    queue_redis_url,
)
from app.video.queue_journal import OrderJournal
from app.video.queue_model import Priority, RenderOrder
from app.video.queue_worker import Emit, LocalRunner, OrderExecutor, QueueWorker
from app.video.service import VideoService

logger = logging.getLogger(__name__)

ADOPT_EVERY = 2.0  # seconds between looks for dead processes' journals (while Redis is up)
REDRIVE_EVERY = 0.5  # seconds between looks at held winner orders
REDRIVE_BATCH = 200  # held orders located in one round trip
MAX_HELD = 1000  # held winner orders; past it the oldest is dropped (with a warning)


@dataclass(slots=True)
class HeldOrder:
    """A winner order no replica has confirmed yet."""

    order: RenderOrder
    since: float  # time.monotonic() when it was held


class VideoDispatcher:
    def __init__(self, settings: Settings, service: VideoService, emit: Emit,
                 queue: RenderQueue | None = None) -> None:
        self.settings = settings
        self.service = service
        self.durable = queue_redis_url(settings) is not None
        # The cache's breaker watches REDIS_URL: it says nothing of a queue on its own Redis.
        self._own_redis = bool(settings.video_queue_redis_url)
        self.embedded = settings.video_worker_mode == "embedded" or not self.durable
        self.queue = queue if queue is not None else (
            RenderQueue(settings) if self.durable else None)
        self.journal = OrderJournal(settings.data_dir / "video-jobs")
        self.local = LocalRunner(
            OrderExecutor(service, emit, self._local_pressure), settings,
            on_done=self._local_done)
        executor = OrderExecutor(service, emit, self._queue_pressure)
        self.worker = (QueueWorker(self.queue, executor, settings, mode="embedded")
                       if self.queue is not None and self.embedded else None)
        self._journaled: set[str] = set()
        self._adopter: asyncio.Task[None] | None = None
        self.fallbacks = 0  # orders run locally because Redis was down
        self.held: OrderedDict[str, HeldOrder] = OrderedDict()  # job key -> unconfirmed winner
        self.confirmed = 0  # winner orders a replica confirmed (or whose job had finished)
        self.resubmitted = 0  # held winner orders found missing and submitted again

    async def _local_pressure(self) -> bool:
        return await self.local.has_pressure()

    async def _queue_pressure(self) -> bool:
        assert self.queue is not None
        try:
            return await self.queue.backlog.waiting(Priority.WINNER) > 0
        except (RedisError, OSError):
            return True  # Redis is down: no speculative work now

    def _local_done(self, order: RenderOrder) -> None:
        if order.job_key in self._journaled:
            self._journaled.discard(order.job_key)
            with contextlib.suppress(OSError):
                self.journal.done(order)

    @property
    def _redis_usable(self) -> bool:
        return self._own_redis or self.service.cache.shared.available

    async def submit(self, order: RenderOrder) -> None:
        """Hand `order` over; never raises for an outage (winners are journaled)."""
        if self.queue is not None and self._redis_usable:
            try:
                await self.queue.submit(order)
            except (RedisError, OSError) as exc:
                logger.warning("render queue unreachable (%s); %s order runs here",
                               type(exc).__name__, order.priority.label)
            else:
                await self._secure(order)
                return
        if self.queue is not None:
            if order.priority is not Priority.WINNER and not self.embedded:
                return  # external workers will have other work; only winners matter now
            self.fallbacks += 1
            if order.priority is Priority.WINNER:
                try:
                    self.journal.append(order)
                    self._journaled.add(order.job_key)
                except OSError:
                    logger.error("could not journal the winner order %s", order.job_key[:40],
                                 exc_info=True)
        self.local.submit(order)

    # --- winners survive a failover -----------------------------------------------------------
    async def _secure(self, order: RenderOrder) -> None:
        """After the queue took a winner's order: hold it unless a replica confirms it."""
        assert self.queue is not None
        if order.priority is not Priority.WINNER or not self.queue.waits:
            return
        try:
            [placed] = await self.queue.locate([order])
        except (RedisError, OSError):
            placed = Placed.UNCONFIRMED
        if placed in {Placed.CONFIRMED, Placed.FINISHED}:
            self.confirmed += 1
        else:
            self._hold(order)

    def _hold(self, order: RenderOrder) -> None:
        if order.job_key in self.held:
            return
        if not self.held:
            logger.warning("No replica of the render queue's Redis confirmed a winner order "
                           "(WAIT, or a failover under way): holding such orders and submitting "
                           "them again until one does")
        try:
            self.journal.append(order)  # held in memory: on disk too, should this process die
        except OSError:
            logger.error("could not journal the held winner order %s", order.job_key[:40],
                         exc_info=True)
        self.held[order.job_key] = HeldOrder(order, time.monotonic())
        while len(self.held) > MAX_HELD:
            _, oldest = self.held.popitem(last=False)
            logger.warning("more than %d winner orders wait for a replica: %s is no longer "
                           "held (a failover now may lose it)", MAX_HELD, oldest.order.job_key[:40])
            self._release(oldest.order)

    def _release(self, order: RenderOrder) -> None:
        self.held.pop(order.job_key, None)
        with contextlib.suppress(OSError):
            self.journal.done(order)

    async def redrive(self) -> int:
        """Look at held orders again: release those a replica confirmed (or whose job has
        finished), submit the missing ones again. Returns how many were released."""
        assert self.queue is not None
        batch = [held.order for held in list(self.held.values())[:REDRIVE_BATCH]]
        placed = dict(zip((o.job_key for o in batch), await self.queue.locate(batch),
                          strict=True))
        again = []
        for order in batch:
            held = self.held.get(order.job_key)  # dropped meanwhile past MAX_HELD?
            if placed[order.job_key] is not Placed.MISSING or held is None:
                continue
            if await self._finished_long_ago(held):
                placed[order.job_key] = Placed.FINISHED
                continue
            await self.queue.submit(order)  # deduplicated while its job is unfinished
            again.append(order)
        if again:
            self.resubmitted += len(again)
            logger.warning("submitted %d held winner order(s) again: the render queue's "
                           "primary did not have them", len(again))
            placed.update(zip((o.job_key for o in again), await self.queue.locate(again),
                              strict=True))
        released = [o for o in batch if placed[o.job_key] in {Placed.CONFIRMED, Placed.FINISHED}]
        for order in released:
            self._release(order)
        if released:
            self.confirmed += len(released)
            logger.info("%d held winner order(s) confirmed (%d still held)", len(released),
                        len(self.held))
        return len(released)

    async def _finished_long_ago(self, held: HeldOrder) -> bool:
        """A finished job's record expires after FINISHED_TTL: an order held longer than that
        may read as missing because it was rendered; the permanent cache entry of its
        combination says so (its job makes it permanent before telling the room)."""
        if time.monotonic() - held.since < FINISHED_TTL / 2:
            return False
        entry = await self.service.cache.aget_entry(held.order.combination())
        return entry is not None and entry.permanent

    async def _upkeep_loop(self) -> None:
        assert self.queue is not None
        adopted_at = -ADOPT_EVERY
        while True:
            if self._redis_usable:
                try:
                    if self.held:
                        await self.redrive()
                    if time.monotonic() - adopted_at >= ADOPT_EVERY:
                        adopted_at = time.monotonic()
                        await self._adopt()
                except (RedisError, OSError):
                    pass
                except Exception:
                    logger.error("render queue upkeep (held or journaled orders) failed",
                                 exc_info=True)
            await asyncio.sleep(REDRIVE_EVERY)

    async def _adopt(self) -> None:
        assert self.queue is not None
        for path, orders in await asyncio.to_thread(self.journal.adopt_dead):
            for order in orders:
                await self.queue.submit(order)
                await self._secure(order)  # held (and journaled here) if not confirmed
            path.unlink(missing_ok=True)
            if orders:
                logger.warning("%d journaled render order(s) of a dead process joined the "
                               "queue", len(orders))

    async def start(self) -> None:
        if not self.durable and topology_of(self.settings.redis_url) == "cluster":
            logger.warning("%s. Until then, renders run in this process, from its memory "
                           "(lost if it stops), and no render worker can help.",
                           no_queue_reason(self.settings))
        self.local.start()
        if self.worker is not None:
            self.worker.start()
        if self.queue is not None:
            self._adopter = asyncio.create_task(self._upkeep_loop(), name="video-order-upkeep")

    async def stop(self, drain: float = 0.0) -> None:
        if self._adopter is not None:
            self._adopter.cancel()
            await asyncio.gather(self._adopter, return_exceptions=True)
        await self.local.stop(drain)
        if self.worker is not None:
            await self.worker.stop()
        if self.queue is not None:
            await self.queue.aclose()

    async def stats(self) -> dict[str, Any]:
        """The queue's view (/api/video/stats and /metrics), or the local runner's."""
        local = {"pending": self.local.pending, "fallbacks": self.fallbacks,
                 **self.local.stats}
        base: dict[str, Any] = {"mode": "embedded" if self.embedded else "external",
                                "local": local}
        if self.queue is not None and self.queue.waits:
            base["replication"] = {"held": len(self.held), "confirmed": self.confirmed,
                                   "resubmitted": self.resubmitted}
        if self.queue is None:
            priorities = {
                p.label: {"waiting": self.local.backlog.depth(p), "admitted": 0,
                          "oldest_age_seconds": _age(self.local.backlog.oldest(p)),
                          "dead_letters": 0 if p is not Priority.WINNER else len(
                              self.local.dead),
                          "renders": 0, "retries": 0, "dropped": 0, "dead": 0, "failures": 0}
                for p in Priority}
            priorities["winner"].update(
                renders=self.local.stats["renders"], retries=self.local.stats["retries"],
                dead=self.local.stats["dead"], failures=self.local.stats["failures"])
            priorities["speculative"]["dropped"] = self.local.backlog.dropped
            return {**base, "backend": "memory", "priorities": priorities, "workers": 1,
                    "dead_letters": list(self.local.dead)}
        try:
            return {**base, **await self.queue.stats()}
        except (RedisError, OSError) as exc:
            return {**base, "backend": "redis", "error": type(exc).__name__}


def _age(started: float | None) -> float:
    import time

    return round(time.time() - started, 3) if started is not None else 0.0
