"""Plans: cache operations written once, as generators that yield the I/O they need.

A plan never does I/O itself. It yields a `Call` (a Redis command) or a `LocalCall` (blocking
local work, such as the journal on disk); a driver runs it and sends back the result. The sync
driver runs both inline. The async driver awaits the command on a `redis.asyncio` client (same
method names as the sync one) and runs local work in a thread, so the event loop never blocks.
Redis errors are mapped once (`app/cache/errors.py`) and thrown into the plan, which decides
what to do. So the sync and the async API share every line of logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Mapping
from typing import Any, NamedTuple, TypeVar

import redis
import redis.asyncio as aioredis

from app.cache.errors import map_backend_error

T = TypeVar("T")


class Call(NamedTuple):
    """A Redis command: `client.<method>(*args, **kwargs)`."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] | None = None


class LocalCall(NamedTuple):
    """Blocking local work; must not raise (it reports failure in its result)."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()


Step = Call | LocalCall
Plan = Generator[Step, Any, T]


def _throw_mapped(plan: Plan[T], exc: Exception) -> Step:
    """Throw the cache error for `exc` into the plan; re-raise anything that is a bug."""
    mapped = map_backend_error(exc)
    if mapped is None:
        raise exc
    return plan.throw(mapped)


def run_sync(plan: Plan[T], client_factory: Callable[[], redis.Redis]) -> T:
    """Drive `plan` on a sync client; the client is only built if the plan needs Redis."""
    client: redis.Redis | None = None
    try:
        step = next(plan)
        while True:
            if isinstance(step, LocalCall):
                step = plan.send(step.function(*step.args))
                continue
            client = client or client_factory()
            try:
                result = getattr(client, step.method)(*step.args, **(step.kwargs or {}))
            except Exception as exc:
                step = _throw_mapped(plan, exc)
            else:
                step = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def run_async(plan: Plan[T], client_factory: Callable[[], aioredis.Redis]) -> T:
    client: aioredis.Redis | None = None
    try:
        step = next(plan)
        while True:
            if isinstance(step, LocalCall):
                step = plan.send(await asyncio.to_thread(step.function, *step.args))
                continue
            client = client or client_factory()
            try:
                result = await getattr(client, step.method)(*step.args, **(step.kwargs or {}))
            except Exception as exc:
                step = _throw_mapped(plan, exc)
            else:
                step = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value
