"""Workers: what runs a render order, on the durable queue (SAQ) or in process memory.

`OrderExecutor.run` is the job itself, whoever runs it: the video service makes (or finds) the
video, and a winner's room gets `video_ready` through `emit` (the web's Socket.IO server, or a
worker's write-only Redis manager), then the gallery records it. Errors are sorted once:

- `RenderFailure`: the combination really failed to render (renderer, storage, provider, bad
  cards). Counted; a winner is retried with backoff up to `video_job_max_failures`, then
  dead-lettered and its room gets `video_failed`.
- `TransientFailure`: load or a deadline (busy, another instance's lock held too long). Retried
  with backoff, never reported to the room, never counted towards the dead letter.
- `Dropped`: a speculative order while winners wait (pressure): not rendered.

`QueueWorker` runs the executor as SAQ's job function: a heartbeat every second while it runs,
admission of more orders after each job, a sweep of dead workers' jobs every third of the
heartbeat limit. `LocalRunner` runs it from a `FairBacklog` in memory (memory://, and a web
instance's fallback while Redis is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from saq import Job, Worker

from app.core.config import Settings
from app.video.errors import (
    GenerationWaitTimeout,
    InvalidCardsError,
    VideoBusyError,
    VideoDeadlineExceeded,
    VideoGenerationError,
)
from app.video.queue import JOB_FUNCTION, RETRY_MAX_DELAY, RenderQueue
from app.video.queue_fair import FairBacklog
from app.video.queue_model import Priority, RenderOrder
from app.video.service import VideoService

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any], str], Awaitable[None]]  # (event, payload, channel)
HEARTBEAT_EVERY = 1.0  # seconds between a running job's heartbeats
TRANSIENT = (VideoBusyError, VideoDeadlineExceeded, GenerationWaitTimeout)


class RenderFailure(Exception):
    """The render itself failed (counted towards the dead letter)."""

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final  # bad input: no retry can help


class TransientFailure(Exception):
    """Load or a deadline: retry later, never tell the room."""


class Dropped(Exception):
    """A speculative order dropped under pressure."""


def reason_of(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:200]


class OrderExecutor:
    def __init__(self, service: VideoService, emit: Emit,
                 pressure: Callable[[], Awaitable[bool]]) -> None:
        self.service = service
        self.emit = emit
        self.pressure = pressure  # True while winners wait: speculative orders are dropped

    async def run(self, order: RenderOrder) -> str:
        if order.priority is Priority.SPECULATIVE and await self.pressure():
            raise Dropped
        winner = order.priority is Priority.WINNER
        try:
            combo = order.combination()
            url = await self.service.get_or_create(combo, permanent=winner, fresh=winner)
        except InvalidCardsError as exc:
            raise RenderFailure(reason_of(exc), final=True) from exc
        except TRANSIENT as exc:
            raise TransientFailure(reason_of(exc)) from exc
        except VideoGenerationError as exc:
            raise RenderFailure(reason_of(exc)) from exc
        if winner:
            await self.tell_ready(order, url)
            if order.public_gallery:
                await self.service.record_winner(combo)
        return url

    async def tell_ready(self, order: RenderOrder, url: str) -> None:
        from app.sockets import payloads

        ready = payloads.VideoReadyOut(round=order.round, black_card=order.black,
                                       white_cards=list(order.whites), video_url=url)
        await self.emit("video_ready", ready.model_dump(), order.channel)

    async def tell_failed(self, order: RenderOrder, reason: str) -> None:
        from app.sockets import payloads

        out = payloads.VideoFailedOut(round=order.round, reason=reason)
        await self.emit("video_failed", out.model_dump(), order.channel)


class _QuietWorker(Worker):  # type: ignore[type-arg]
    """SAQ's worker without signal handlers: the process that embeds it owns its signals."""

    SIGNALS: list[Any] = []


class QueueWorker:
    """A worker on the durable queue; `start()` / `await stop()`."""

    def __init__(self, queue: RenderQueue, executor: OrderExecutor, settings: Settings, *,
                 mode: str = "external") -> None:
        self.queue = queue
        self.executor = executor
        self.settings = settings
        heartbeat = settings.video_job_heartbeat
        self.worker = _QuietWorker(
            queue.saq, functions=[(JOB_FUNCTION, self._job)],
            concurrency=settings.video_worker_concurrency,
            timers={"sweep": max(1, heartbeat // 3), "schedule": 1, "worker_info": 3,
                    "abort": 1},
            dequeue_timeout=1.0,
            before_process=self._admit_hook, after_process=self._admit_hook,
            shutdown_grace_period_s=5,
            metadata={"host": socket.gethostname(), "pid": os.getpid(), "mode": mode})
        self._task: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self.renders = 0

    async def _admit_hook(self, _ctx: Any) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.queue.admit()

    async def _beat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            with contextlib.suppress(RedisError, OSError):
                await job.update()

    async def _job(self, ctx: dict[str, Any], *, order: dict[str, Any]) -> str | None:
        job: Job = ctx["job"]
        parsed = RenderOrder.from_dict(order)
        beat = asyncio.create_task(self._beat(job), name="video-job-heartbeat")
        try:
            return await self._run(parsed, job)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def _run(self, order: RenderOrder, job: Job) -> str | None:
        queue, p = self.queue, order.priority
        try:
            url = await self.executor.run(order)
        except Dropped:
            await queue.count("dropped", p)
            await queue.backlog.done(order)
            return None
        except TransientFailure as exc:
            await queue.count("retries", p)
            logger.info("render job %s: %s; retrying", order.job_key[:40], exc)
            raise
        except RenderFailure as exc:
            failures = int(job.meta.get("failures", 0)) + 1
            job.meta["failures"] = failures
            await queue.count("failures", p)
            if p is Priority.WINNER and not exc.final and \
                    failures < self.settings.video_job_max_failures:
                await queue.count("retries", p)
                logger.warning("render job %s failed (%d/%d): %s; retrying", order.job_key[:40],
                               failures, self.settings.video_job_max_failures, exc)
                raise
            await self._give_up(order, str(exc), failures)
            return None
        self.renders += 1
        await queue.count("renders", p)
        await queue.backlog.done(order)
        return url

    async def _give_up(self, order: RenderOrder, reason: str, failures: int) -> None:
        if order.priority is Priority.WINNER:
            logger.error("render job %s failed %d time(s): dead-lettered (%s)",
                         order.job_key[:40], failures, reason)
            await self.queue.dead_letter(order, reason, failures)
            await self.executor.tell_failed(order, reason)
        await self.queue.backlog.done(order)

    async def _upkeep_loop(self) -> None:
        """Admission (a safety net for missed hooks) and recovery of orphaned admissions."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                await self.queue.admit()
                if tick % 15 == 0:
                    await self.queue.recover()
            except (RedisError, OSError):
                pass
            except Exception:
                logger.error("render queue upkeep failed", exc_info=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self.worker.start(), name="video-queue-worker")
        self._upkeep = asyncio.create_task(self._upkeep_loop(), name="video-queue-upkeep")

    async def stop(self) -> None:
        """Finish the running jobs (up to 5 s; the rest go back to the queue), then stop."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
        await self.worker.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class LocalRunner:
    """The same policy and job in process memory: memory://, or while Redis is down."""

    def __init__(self, executor: OrderExecutor, settings: Settings,
                 on_done: Callable[[RenderOrder], None] | None = None) -> None:
        self.executor = executor
        self.settings = settings
        self.backlog = FairBacklog(settings.video_queue_speculative_max)
        self.on_done = on_done
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.running: set[str] = set()  # job keys being run
        self.stats = {"renders": 0, "retries": 0, "failures": 0, "dead": 0}
        self.dead: list[dict[str, Any]] = []

    async def has_pressure(self) -> bool:
        return self.backlog.depth(Priority.WINNER) > 0

    def submit(self, order: RenderOrder) -> bool:
        if order.job_key in self.running:
            return False
        accepted = self.backlog.push(order)
        self._wake.set()
        return accepted

    def start(self) -> None:
        for n in range(self.settings.video_worker_concurrency):
            self._tasks.append(asyncio.create_task(self._consume(), name=f"video-local-{n}"))

    async def _consume(self) -> None:
        while True:
            order = self.backlog.pop()
            if order is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.running.add(order.job_key)
            try:
                await self._run(order)
            except Exception:
                logger.error("local render job %s crashed", order.job_key[:40], exc_info=True)
            finally:
                self.running.discard(order.job_key)
                if self.on_done is not None:
                    self.on_done(order)

    async def _run(self, order: RenderOrder) -> None:
        failures = attempts = 0
        delay = self.settings.video_job_retry_delay
        while True:
            attempts += 1
            try:
                await self.executor.run(order)
                self.stats["renders"] += 1
                return
            except Dropped:
                return
            except TransientFailure:
                if attempts >= 20:
                    raise
            except RenderFailure as exc:
                failures += 1
                self.stats["failures"] += 1
                if order.priority is not Priority.WINNER:
                    return
                if exc.final or failures >= self.settings.video_job_max_failures:
                    self.stats["dead"] += 1
                    self.dead.append({"key": order.job_key, "error": str(exc),
                                      "failures": failures, "room": order.room})
                    del self.dead[:-50]
                    await self.executor.tell_failed(order, str(exc))
                    return
            self.stats["retries"] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)

    @property
    def pending(self) -> int:
        return len(self.backlog) + len(self.running)

    @property
    def pending_winners(self) -> int:
        return self.backlog.depth(Priority.WINNER) + sum(
            1 for key in self.running if key.startswith("winner:"))

    async def stop(self, drain: float = 0.0) -> None:
        """Let winners finish for up to `drain` seconds, then stop."""
        if drain > 0 and self.pending_winners:
            loop = asyncio.get_running_loop()
            end = loop.time() + drain
            while self.pending_winners and loop.time() < end:
                await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
