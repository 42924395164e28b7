"""Errors of the cache, and the one place where lower-layer errors are mapped to them.

    CacheBackendError            Redis could not serve the call
    ├── RedisUnavailable         connection, timeout, auth, OOM, READONLY...: open the breaker
    ├── RedisBusy                the pool is exhausted: serve this call from memory only
    └── WrongTypeError           the key holds another Redis type: a corrupt entry
"""

from __future__ import annotations

import asyncio
from typing import Literal

from redis import exceptions as redis_errors


class CacheBackendError(Exception):
    """Base of the errors raised into a cache plan by its driver."""


class RedisUnavailable(CacheBackendError):
    pass


class RedisBusy(CacheBackendError):
    pass


class WrongTypeError(CacheBackendError):
    pass


def map_backend_error(exc: BaseException) -> CacheBackendError | None:
    """The cache error for `exc`, or None when `exc` is not a backend failure (a bug)."""
    if isinstance(exc, redis_errors.MaxConnectionsError):
        return RedisBusy(str(exc))
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("WRONGTYPE"):
        return WrongTypeError(str(exc))
    if isinstance(exc, redis_errors.RedisError | OSError | asyncio.TimeoutError):
        return RedisUnavailable(describe(exc))
    if _cluster_unreachable(exc):
        return RedisUnavailable(describe(exc))
    return None


# redis-py's Cluster errors outside RedisError that mean "the cluster cannot serve this now";
# any other RedisClusterException (a multi-slot MGET, a blocked pipeline command) is our bug.
CLUSTER_OUTAGE_MESSAGES = ("Redis Cluster cannot be connected", "All slots are not covered",
                           "slot(s) not covered", "No targets were found",
                           "has no redis_connection", "doesn't exist in the cluster")


def _cluster_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, redis_errors.SlotNotCoveredError):
        return True
    return isinstance(exc, redis_errors.RedisClusterException) and any(
        text in str(exc) for text in CLUSTER_OUTAGE_MESSAGES)


def describe(exc: BaseException) -> str:
    """One short line for logs and stats; server replies keep their error class."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    if isinstance(exc, redis_errors.ResponseError):
        return f"{type(exc).__name__}: {text}"
    return text


class mapped_errors:  # lower case: used like contextlib.suppress
    """`with mapped_errors():` raises the cache error for a Redis/OS/timeout failure.

    The one home of that mapping for code that talks to Redis outside a plan (the shared
    helpers, the doctor, the CLI); a plan's driver uses `map_backend_error` directly. A class,
    not a generator: it sits on hot paths and must cost next to nothing.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if exc is None:
            return False
        mapped = map_backend_error(exc)
        if mapped is None:
            return False  # a bug of ours: let it through untouched
        raise mapped from exc
