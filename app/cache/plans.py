"""Plans: cache operations written once, as generators that yield the Redis calls they need.

A plan never does I/O. It yields a `Call`; a driver runs it on a sync or an async redis-py
client (both have the same method names) and sends back the result, or throws the mapped
`CacheBackendError` into the plan. So the sync and the async API share every line of logic.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

import redis
import redis.asyncio as aioredis

from app.cache.errors import map_backend_error

T = TypeVar("T")


class Call(NamedTuple):
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}


Plan = Generator[Call, Any, T]


def _throw_mapped(plan: Plan[T], exc: Exception) -> Call:
    """Throw the cache error for `exc` into the plan; re-raise anything that is a bug."""
    mapped = map_backend_error(exc)
    if mapped is None:
        raise exc
    return plan.throw(mapped)


def run_sync(plan: Plan[T], client_factory: Callable[[], redis.Redis]) -> T:
    """Drive `plan` on a sync client; the client is only built if the plan needs Redis."""
    try:
        call = next(plan)
        client = client_factory()
        while True:
            try:
                result = getattr(client, call.method)(*call.args, **call.kwargs)
            except Exception as exc:
                call = _throw_mapped(plan, exc)
            else:
                call = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def run_async(plan: Plan[T], client_factory: Callable[[], aioredis.Redis]) -> T:
    try:
        call = next(plan)
        client = client_factory()
        while True:
            try:
                result = await getattr(client, call.method)(*call.args, **call.kwargs)
            except Exception as exc:
                call = _throw_mapped(plan, exc)
            else:
                call = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value
