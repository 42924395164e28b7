"""Rate limits per client, counted in Redis so that every instance sees them, on `limits`.

One `RateLimits` object per app (built in `create_app`, on `app.state.rate_limits`). A limit is
named, keyed (usually by client address) and given a rate in the `limits` notation
(``"10/minute"``, ``"5 per second"``, ``"100/hour;10/minute"`` is *not* supported: one rate)::

    limits = RateLimits.from_settings(settings)
    await limits.start()                         # lifespan: probe Redis, log which store counts
    if not await limits.hit("create_room", address, "10/minute"):
        seconds = await limits.retry_after("create_room", address, "10/minute")
        ...  # refuse with a clear error code; tell the client to retry in `seconds`
    await limits.aclose()                        # lifespan shutdown

``check()`` does the hit and returns a `Verdict` (allowed, remaining, retry_after) in one call.

Storage: ``async+redis://`` (redis-py's asyncio client, with the cache's short timeouts and no
retries) when REDIS_URL names a Redis; `MemoryStorage` when REDIS_URL is ``memory://``. With
``redis+sentinel://`` the `limits` Sentinel storage on the master (never a replica: a count read
there may be stale), with ``redis+cluster://`` its Cluster storage; both with the same timeouts and
no retries. Over TLS (``rediss://``, ``rediss+cluster://``) the storage gets the REDIS_TLS_* files
as redis-py's ``ssl_*`` options (`limits` has no TLS Cluster scheme, but hands its options to
redis-py's ``RedisCluster``, which speaks TLS with ``ssl=True``). The sliding window's two keys
share a hash tag, so its script runs on Cluster. The limiter fails open *to memory*, never to "no
limit" and never to an exception: when a Redis call fails, counting moves to this process's memory
for `retry_interval` seconds, after which Redis is tried again. During an outage each instance
counts alone, so a client may get up to N times the rate across N instances; one instance (the
default) enforces it exactly as before.

The strategy is the sliding window counter: two counters per limit and key, so its cost does not
grow with the rate, and no burst of twice the rate at a window boundary as a fixed window allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, parse
from limits.aio.storage import (
    MemoryStorage,
    RedisClusterStorage,
    RedisSentinelStorage,
    RedisStorage,
    Storage,
)
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.core.config import Settings
from app.core.redis_url import parse_multi_host, topology_of, uses_tls

logger = logging.getLogger(__name__)

KEY_PREFIX = "punchline:limits"
# What a failing Redis call may raise; each moves counting to memory for a while.
REDIS_FAILURES: tuple[type[BaseException], ...] = (
    RedisError, StorageError, OSError, asyncio.TimeoutError)
MEMORY_SCHEMES = {"memory", "mem"}
T = TypeVar("T")


@lru_cache(maxsize=256)
def parse_rate(rate: str) -> RateLimitItem:
    """``"10/minute"`` -> a `limits` item; raises ValueError for anything else."""
    return parse(rate)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after: int  # whole seconds until a refused hit may succeed; 0 when allowed


def limits_url(redis_url: str) -> str | None:
    """The `limits` storage URL for REDIS_URL, or None for memory.

    A Sentinel URL loses its /db segment (`limits` wants /service; the db becomes an option)."""
    scheme = urlsplit(redis_url).scheme
    if scheme in MEMORY_SCHEMES:
        return None
    if scheme == "unix":
        return "async+redis+unix" + redis_url[len("unix"):]
    if topology_of(redis_url) == "sentinel":
        parts = urlsplit(redis_url)
        address = parse_multi_host(redis_url)
        return urlunsplit(("async+redis+sentinel", parts.netloc, f"/{address.service}", "", ""))
    if topology_of(redis_url) == "cluster":  # rediss+cluster too: TLS is an option, not a scheme
        return "async+redis+cluster" + redis_url[len(scheme):]
    return "async+" + redis_url


def _redis_storage(redis_url: str, url: str, timeout: float, key_prefix: str,
                   tls: Mapping[str, Any]) -> tuple[Storage, ConnectionPool | None]:
    """The `limits` storage for REDIS_URL (any topology), fail-fast; and its pool if it has one."""
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout, "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0), "health_check_interval": 0, "max_connections": 64}
    topology = topology_of(redis_url)
    if uses_tls(redis_url):
        options.update(tls)
        if topology != "standalone":  # rediss:// picks redis-py's SSL connection; these need ssl
            options["ssl"] = True
    if topology == "cluster":
        # The asyncio RedisCluster takes no retry_on_timeout; with `retry` at 0 none happens.
        return RedisClusterStorage(url, implementation="redispy", key_prefix=key_prefix,
                                   require_full_coverage=False, **options), None
    options["retry_on_timeout"] = False
    if topology == "sentinel":
        address = parse_multi_host(redis_url)
        # The URL's password is the data nodes' (as for the cache): the sentinels get none.
        sentinel_kwargs: dict[str, Any] = {
            "password": None, **{name: value for name, value in options.items()
                                 if name.startswith(("socket_", "ssl")) or name == "retry"}}
        return RedisSentinelStorage(url, implementation="redispy", key_prefix=key_prefix,
                                    use_replicas=False, db=address.db,
                                    sentinel_kwargs=sentinel_kwargs, **options), None
    pool = ConnectionPool.from_url(redis_url, **options)
    return RedisStorage(url, implementation="redispy", key_prefix=key_prefix,
                        connection_pool=pool), pool  # type: ignore[arg-type]


class RateLimits:
    def __init__(self, redis_url: str | None = None, *, timeout: float = 0.25,
                 retry_interval: float = 5.0, key_prefix: str = KEY_PREFIX,
                 tls: Mapping[str, Any] | None = None) -> None:
        """`tls`: redis-py's ssl_* options (`connection.tls_options`), used with a TLS URL."""
        self._retry_interval = retry_interval
        self._memory = MemoryStorage()
        self._memory_limiter = SlidingWindowCounterRateLimiter(self._memory)
        self._pool: ConnectionPool | None = None
        self._storage: Storage | None = None
        self._redis_limiter: SlidingWindowCounterRateLimiter | None = None
        self._redis_down_until = 0.0
        url = limits_url(redis_url) if redis_url else None
        if url is not None and redis_url is not None:
            self._storage, self._pool = _redis_storage(redis_url, url, timeout, key_prefix,
                                                       tls or {})
            self._redis_limiter = SlidingWindowCounterRateLimiter(self._storage)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> RateLimits:
        # The cache's REDIS_DB rule and TLS files.
        from app.cache.connection import effective_url, tls_options

        return cls(effective_url(settings), timeout=settings.redis_socket_timeout,
                   tls=tls_options(settings), **kwargs)

    @property
    def backend(self) -> Literal["redis", "memory"]:
        """Where the next hit is counted."""
        return "redis" if self._use_redis() else "memory"

    async def start(self) -> None:
        """Probe Redis once, so that the start-up log says where limits are counted."""
        if self._redis_limiter is None:
            logger.info("Rate limits are counted in memory (REDIS_URL=memory://)")
            return
        try:
            ok = await self._redis_limiter.storage.check()
        except REDIS_FAILURES:
            ok = False
        if ok:
            logger.info("Rate limits are counted in Redis")
        else:
            self._mark_down(None)

    async def aclose(self) -> None:
        timer = self._memory.timer
        if timer is not None and not timer.done():
            timer.cancel()
        if self._pool is not None:
            await self._pool.aclose()
        elif self._storage is not None:  # Sentinel or Cluster: the client `limits` built
            await _close_bridge(self._storage)

    # --- the API --------------------------------------------------------------------------------
    async def hit(self, name: str, key: str, rate: str, cost: int = 1) -> bool:
        """Count one event of `name` for `key`; False when that exceeds `rate`."""
        item = parse_rate(rate)
        return await self._call(lambda lim: lim.hit(item, name, key, cost=cost))

    async def test(self, name: str, key: str, rate: str, cost: int = 1) -> bool:
        """Would a hit be allowed? Counts nothing."""
        item = parse_rate(rate)
        return await self._call(lambda lim: lim.test(item, name, key, cost=cost))

    async def retry_after(self, name: str, key: str, rate: str) -> int:
        """Whole seconds (at least 1) until a hit may be allowed again: a Retry-After value."""
        item = parse_rate(rate)
        stats = await self._call(lambda lim: lim.get_window_stats(item, name, key))
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, name: str, key: str, rate: str, cost: int = 1) -> Verdict:
        """Hit, and say how many remain and, when refused, how long to wait."""
        item = parse_rate(rate)
        allowed = await self.hit(name, key, rate, cost)
        stats = await self._call(lambda lim: lim.get_window_stats(item, name, key))
        wait = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, stats.remaining, wait)

    async def clear(self, name: str, key: str, rate: str) -> None:
        """Forget the count of `name` for `key` (e.g. after a successful login)."""
        item = parse_rate(rate)
        await self._call(lambda lim: lim.clear(item, name, key))

    # --- fail open to memory -------------------------------------------------------------------
    def _use_redis(self) -> bool:
        return self._redis_limiter is not None and time.monotonic() >= self._redis_down_until

    def _mark_down(self, exc: BaseException | None) -> None:
        if time.monotonic() >= self._redis_down_until:  # one line per outage window
            logger.warning("Rate limits: Redis unavailable (%s), counting in memory for %.0f s",
                           type(exc).__name__ if exc else "no answer", self._retry_interval)
        self._redis_down_until = time.monotonic() + self._retry_interval

    async def _call(self, op: Callable[[SlidingWindowCounterRateLimiter], Awaitable[T]]) -> T:
        if self._redis_limiter is not None and self._use_redis():
            try:
                return await op(self._redis_limiter)
            except REDIS_FAILURES as exc:
                self._mark_down(exc)
        return await op(self._memory_limiter)


async def _close_bridge(storage: Storage) -> None:
    """Close the redis-py clients inside a `limits` Sentinel or Cluster storage (it has no
    close of its own): the master's or cluster's client, and the sentinels'."""
    bridge = getattr(storage, "bridge", None)
    clients = [getattr(bridge, "storage", None), getattr(bridge, "storage_replica", None)]
    sentinel = getattr(bridge, "sentinel", None)
    clients += list(getattr(sentinel, "sentinels", []))
    for client in clients:
        if client is not None:
            with contextlib.suppress(*REDIS_FAILURES):
                await client.aclose()
