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
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from app.cache.core import CacheCore
from app.cache.plans import (
    Delete,
    Eval,
    Exists,
    Get,
    MGet,
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
Scored = list[tuple[bytes | str, float]]


# Sorted-set steps of the winners index (app/video/winners.py), typed like those of plans.py.
@dataclass(slots=True)
class ZAdd(RedisStep[int]):
    """ZADD one member with its score (updating the score of a member already there)."""

    key: str
    member: str
    score: float

    def sync(self, client: redis.Redis) -> int:
        return int(client.zadd(self.key, {self.member: self.score}) or 0)

    async def aio(self, client: aioredis.Redis) -> int:
        return int(await client.zadd(self.key, {self.member: self.score}) or 0)


@dataclass(slots=True)
class ZRem(RedisStep[int]):
    key: str
    member: str

    def sync(self, client: redis.Redis) -> int:
        return int(client.zrem(self.key, self.member))

    async def aio(self, client: aioredis.Redis) -> int:
        return int(await client.zrem(self.key, self.member))


@dataclass(slots=True)
class ZBelow(RedisStep[Scored]):
    """Up to `count` members scored strictly below `below` (None: no bound), highest first."""

    key: str
    below: float | None
    count: int

    @property
    def _max(self) -> str:
        return "+inf" if self.below is None else f"({self.below!r}"

    def sync(self, client: redis.Redis) -> Scored:
        return _pairs(client.zrevrangebyscore(self.key, self._max, "-inf", start=0,
                                              num=self.count, withscores=True))

    async def aio(self, client: aioredis.Redis) -> Scored:
        return _pairs(await client.zrevrangebyscore(self.key, self._max, "-inf", start=0,
                                                    num=self.count, withscores=True))


def _pairs(rows: Any) -> Scored:
    """WITHSCORES rows (typed loosely by redis-py) as (member, score) pairs."""
    return [(member, float(score)) for member, score in rows]


@dataclass(slots=True)
class SMembers(RedisStep[list[str]]):
    """The members of a set, as text."""

    key: str

    def sync(self, client: redis.Redis) -> list[str]:
        return [_text(m) for m in client.smembers(self.key)]

    async def aio(self, client: aioredis.Redis) -> list[str]:
        return [_text(m) for m in await client.smembers(self.key)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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

    async def smembers(self, key: str) -> list[str]:
        return await self._run(SMembers(key))

    async def mget(self, keys: Sequence[str]) -> list[Raw]:
        return await self._run(MGet(list(keys)))

    async def zadd(self, key: str, member: str, score: float) -> int:
        return await self._run(ZAdd(key, member, score))

    async def zrem(self, key: str, member: str) -> int:
        return await self._run(ZRem(key, member))

    async def zbelow(self, key: str, below: float | None, count: int) -> Scored:
        """Members scored strictly below `below` (None: all), highest first, at most `count`."""
        return await self._run(ZBelow(key, below, count))

    async def zincrby(self, key: str, amount: float, member: str) -> float:
        return await self._run(ZIncrBy(key, amount, member))

    async def ztrim(self, key: str, keep: int) -> int:
        return await self._run(ZTrim(key, keep))

    async def ztop(self, key: str, count: int) -> list[tuple[bytes | str, float]]:
        return await self._run(ZTop(key, count))
