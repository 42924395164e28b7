"""The recovery probe: while the breaker is open, one probe at a time looks for Redis.

In the server it runs as an asyncio task started by the lifespan; a process that only uses
the sync API gets a daemon thread instead. Both drive the same plan (`CacheCore.plan_recover`).
Between outages they replay what a racing writer left in the journal, and re-write permanent
entries that no replica confirmed yet (`replication.py`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import redis
import redis.asyncio as aioredis

from app.cache.core import CacheCore
from app.cache.plans import run_async, run_sync

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.5


def _next_wait(core: CacheCore) -> float:
    if core.breaker.is_open:
        return min(core.breaker.seconds_until_probe(), IDLE_CHECK_SECONDS)
    return IDLE_CHECK_SECONDS


class ThreadProber:
    def __init__(self, core: CacheCore, client: Callable[[], redis.Redis]) -> None:
        self.core = core
        self._client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cache-prober", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            if not self._thread.is_alive():
                self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(_next_wait(self.core)):
            try:
                if self.core.breaker.try_begin_probe():
                    try:
                        run_sync(self.core.plan_recover(), self._client)
                    finally:
                        self.core.breaker.release_probe("probe interrupted")
                else:
                    run_sync(self.core.plan_replay_pending(), self._client)
                    if self.core.redis_usable:
                        run_sync(self.core.replicas.plan_redrive(), self._client)
            except Exception:
                logger.exception("Cache probe failed unexpectedly")


async def probe_forever(core: CacheCore, client: Callable[[], aioredis.Redis]) -> None:
    """The asyncio twin of ThreadProber._run; cancel the task to stop it."""
    while True:
        await asyncio.sleep(_next_wait(core))
        try:
            if core.breaker.try_begin_probe():
                try:
                    await run_async(core.plan_recover(), client)
                finally:  # also when the task is cancelled mid-probe
                    core.breaker.release_probe("probe interrupted")
            else:
                await run_async(core.plan_replay_pending(), client)
                if core.redis_usable:
                    await run_async(core.replicas.plan_redrive(), client)
        except Exception:
            logger.exception("Cache probe failed unexpectedly")
