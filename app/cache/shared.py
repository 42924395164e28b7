"""Typed Redis commands for state that other layers keep beside the cache.

The video layer's generation lock, negative cache and popularity counts live in the same Redis
as the cache. They reach it only through this object (`video_cache.shared`), never through a
raw client, so that:

- every call is typed (the steps of `plans.py`) and its errors are mapped in one place: a
  failure raises `CacheBackendError` (`RedisUnavailable`, `RedisBusy`, `WrongTypeError`), and
  callers catch that one type;
- while the cache's breaker is open, no call waits on Redis: it raises `RedisUnavailable` at
  once, and an outage met here opens the breaker for the cache too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import redis.asyncio as aioredis

from app.cache.core import CacheCore
from app.cache.plans import (
    Delete,
    Eval,
    Exists,
    Get,
    PTtl,
    Raw,
    RedisStep,
    Set,
    ZIncrBy,
    ZTop,
    ZTrim,
    run_async,
)

T = TypeVar("T")


class SharedRedis:
    def __init__(self, core: Callable[[], CacheCore],
                 client: Callable[[], aioredis.Redis]) -> None:
        self._core = core
        self._client = client

    @property
    def available(self) -> bool:
        """Whether a call would reach Redis now (not memory-only, breaker closed)."""
        return self._core().redis_usable

    async def _run(self, step: RedisStep[T]) -> T:
        return await run_async(self._core().plan_shared(step), self._client)

    async def get(self, key: str) -> Raw:
        return await self._run(Get(key))

    async def pttl(self, key: str) -> int:
        """Milliseconds left; -1 without expiry, -2 when absent."""
        return await self._run(PTtl(key))

    async def set(self, key: str, value: bytes | str, *, px: int | None = None,
                  only_if_absent: bool = False) -> bool:
        return await self._run(Set(key, value, px=px, only_if_absent=only_if_absent))

    async def delete(self, key: str) -> int:
        return await self._run(Delete(key))

    async def exists(self, key: str) -> bool:
        return await self._run(Exists(key))

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str]) -> int:
        """A Lua script with an integer reply (compare-and-act locks)."""
        return await self._run(Eval(script, keys, args))

    async def zincrby(self, key: str, amount: float, member: str) -> float:
        return await self._run(ZIncrBy(key, amount, member))

    async def ztrim(self, key: str, keep: int) -> int:
        return await self._run(ZTrim(key, keep))

    async def ztop(self, key: str, count: int) -> list[tuple[bytes | str, float]]:
        return await self._run(ZTop(key, count))
