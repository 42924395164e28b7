"""A lock shared by every instance, built once on the typed commands of `shared.py`.

`SET NX PX` with a random token takes it; release and extension are compare-and-act Lua
scripts, so an instance whose lock expired can never delete or extend the lock that another
instance took over. The TTL only matters when the holder dies: while it lives, a `LockKeeper`
extends the lock every third of the TTL, however long the block takes.

    lock = RedisLock(video_cache.shared, "punchline:some-lock", ttl=30)
    if await lock.acquire():
        async with LockKeeper(lock):
            ...  # the lock is released on the way out

Users: the video layer's generation lock (app/video/locks.py) and the index healer's rebuild
lock (healer.py). Every method raises `CacheBackendError` when Redis cannot serve it; the
keeper swallows those (the lock then expires on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from types import TracebackType

from app.cache.errors import CacheBackendError
from app.cache.shared import SharedRedis

logger = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# How long the exit of a `LockKeeper` waits for its task: a cancel alone can be swallowed inside
# a Redis call, and an unbounded wait would hang the shutdown.
_STOP_TIMEOUT = 2.0


class RedisLock:
    """One lock held under a random token."""

    def __init__(self, shared: SharedRedis, name: str, ttl: float) -> None:
        self.shared = shared
        self.name = name
        self.ttl = ttl
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = secrets.token_hex(16)

    async def acquire(self) -> bool:
        return await self.shared.set(self.name, self.token, px=self.ttl_ms, only_if_absent=True)

    async def release(self) -> bool:
        return bool(await self.shared.eval(_RELEASE, (self.name,), (self.token,)))

    async def extend(self) -> bool:
        return bool(await self.shared.eval(_EXTEND, (self.name,),
                                           (self.token, str(self.ttl_ms))))

    async def is_held(self) -> bool:
        """Whether anyone holds the lock now."""
        return await self.shared.exists(self.name)


class LockKeeper:
    """Keeps an acquired lock alive while a block runs, then releases it.

    `on_extend` is called after each successful extension (for stats). A lock found taken over
    by another holder is left alone: neither extended nor released.
    """

    def __init__(self, lock: RedisLock, *, on_extend: Callable[[], None] | None = None) -> None:
        self.lock = lock
        self.interval = max(0.05, lock.ttl / 3)
        self._on_extend = on_extend
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RedisLock:
        self._task = asyncio.create_task(self._keep(), name=f"lock-keeper:{self.lock.name}")
        return self.lock

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._task is not None:
            try:
                await asyncio.wait({self._task}, timeout=_STOP_TIMEOUT)
            finally:  # also when the holder itself is cancelled: never leak the keeper
                if not self._task.done():
                    self._task.cancel()
        with contextlib.suppress(CacheBackendError):  # it expires on its own
            await self.lock.release()

    async def _keep(self) -> None:
        while True:
            # asyncio.timeout, not wait_for, which can swallow a cancel on Python 3.11.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._done.wait()
            if self._done.is_set():
                return
            try:
                extended = await self.lock.extend()
            except CacheBackendError as exc:
                logger.info("could not extend the lock %s: %s", self.lock.name, exc)
                continue
            if not extended:
                logger.warning("lost the lock %s: it expired and another holder took it",
                               self.lock.name)
                return
            if self._on_extend is not None:
                self._on_extend()
