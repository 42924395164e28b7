"""Self-healing index: notice that Redis lost its data, and rebuild the index once.

Redis without persistence comes back empty after a restart, and FLUSHALL empties it at once.
The stored videos survive (each has a sidecar naming its cards, see app/video/reindex.py),
so the index can be rebuilt from them; nothing else would bring the permanent winners back.

The signal is a marker key (`punchline:index-marker`, no TTL) that is written once the index
is complete. Every instance checks it every `CACHE_INDEX_CHECK_INTERVAL` seconds, and at once
when the cache reconnects. When it is missing, the instance that wins a short Redis lock
(`lock.py`: `SET NX PX`, kept alive while it works) rebuilds in the background, logs its
progress (and in /metrics: `index_rebuild_in_progress`, `index_rebuild_scanned`), and writes
the marker; the others see the lock and wait for the marker. A first start on an empty Redis
looks the same and costs one scan of the video folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from app.cache.core import CacheCore
from app.cache.entry import utc_now_iso
from app.cache.errors import CacheBackendError
from app.cache.lock import LockKeeper, RedisLock
from app.cache.shared import SharedRedis

logger = logging.getLogger(__name__)

MARKER_KEY = "punchline:index-marker"
LOCK_KEY = "punchline:index-rebuild"
LOCK_TTL = 30.0  # seconds; the keeper extends it every 10 s while the rebuild runs

Progress = Callable[[int], None]  # called with the number of videos scanned so far
Rebuild = Callable[[Progress], Awaitable[int]]  # returns the entries it wrote back


class IndexHealer:
    def __init__(self, core: CacheCore, shared: SharedRedis, rebuild: Rebuild,
                 interval: float) -> None:
        self.core = core
        self.shared = shared
        self.rebuild = rebuild
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_recover: Callable[[], None] | None = None

    def start(self) -> None:
        """Start checking, as a task of the running loop (the server's lifespan)."""
        if self.interval <= 0 or self.core.memory_only:
            return
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._on_recover = self._wake_from_any_thread(loop)
            self.core.on_recover.append(self._on_recover)
            self._task = loop.create_task(self._run(), name="video-index-healer")

    async def stop(self) -> None:
        if self._on_recover in self.core.on_recover:
            self.core.on_recover.remove(self._on_recover)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _wake_from_any_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wake.set)
        return wake

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except Exception:
                logger.exception("Index check failed unexpectedly")
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives with the wake-up, and shutdown then waits a whole interval.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()

    async def check_once(self) -> bool:
        """Rebuild when the marker is gone and no other instance is at it; True if rebuilt."""
        if not self.shared.available:
            return False
        lock = RedisLock(self.shared, LOCK_KEY, LOCK_TTL)
        try:
            if await self.shared.exists(MARKER_KEY):
                return False
            if not await lock.acquire():
                return False  # another instance is rebuilding
        except CacheBackendError:
            return False  # an outage: the probe wakes us when Redis is back
        async with LockKeeper(lock):
            return await self._rebuild_locked()

    async def _rebuild_locked(self) -> bool:
        logger.warning("Redis has no index marker (restarted empty, flushed, or first start): "
                       "rebuilding the video index from stored videos")
        # Entries held in memory may be gone from Redis: none of them is a near hit now.
        self.core.memory.mark_all_stale()
        self.core.invalidation_epoch += 1
        started = time.monotonic()
        last_log = [started]
        counters = self.core.counters
        counters.index_rebuild_scanned = 0
        counters.index_rebuild_in_progress = 1

        def progress(scanned: int) -> None:
            counters.index_rebuild_scanned = scanned  # read by /metrics while it runs
            now = time.monotonic()
            if now - last_log[0] >= 5.0:
                last_log[0] = now
                logger.info("Index rebuild: %d videos scanned", scanned)

        try:
            restored = await self.rebuild(progress)
            if not self.core.redis_usable:
                logger.warning("Index rebuild interrupted by a Redis outage; it runs again "
                               "when Redis is back")
                return False
            await self.shared.set(MARKER_KEY, utc_now_iso())
        except CacheBackendError as exc:
            logger.warning("Index rebuild interrupted (%s); it runs again later", exc)
            return False
        finally:
            counters.index_rebuild_in_progress = 0
        self.core.counters.index_rebuilds += 1
        self.core.counters.index_restored += restored
        logger.info("✅ Video index rebuilt in %.1fs: %d entries restored",
                    time.monotonic() - started, restored)
        return True
