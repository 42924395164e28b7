"""Plans: cache operations written once, as generators that yield the I/O they need.

A plan never does I/O itself. It asks for a typed step with `result = yield from Get(key)`:
a `RedisStep` (one Redis command, with its sync and its async form side by side, so mypy
checks every call against redis-py's types) or a `LocalCall` (blocking local work, such as the
journal on disk). A driver runs the step and sends back its result. The sync driver runs both
inline; the async driver awaits the command on a `redis.asyncio` client and runs local work in
a thread, so the event loop never blocks. Redis errors are mapped once (`app/cache/errors.py`)
and thrown into the plan, which decides what to do. So the sync and the async API share every
line of logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from app.cache.cluster_mget import mget_async, mget_sync
from app.cache.connection import is_cluster
from app.cache.errors import map_backend_error

T = TypeVar("T")
Raw = bytes | str | None


class RedisStep(Generic[T]):
    """One Redis command. `yield from step` in a plan returns what the command returned."""

    __slots__ = ()

    def sync(self, client: redis.Redis) -> T:
        raise NotImplementedError

    async def aio(self, client: aioredis.Redis) -> T:
        raise NotImplementedError

    def __iter__(self) -> Generator[Step, object, T]:
        # The driver sends back exactly what `sync`/`aio` returned.
        return cast(T, (yield self))


class Pipelined(RedisStep[T]):
    """A write the async batcher may send inside a pipeline (see `app/cache/batching.py`):
    `queue` adds the command to a pipeline, `reply` turns its raw reply into what `aio` returns.
    """

    __slots__ = ()

    def queue(self, pipe: Pipeline) -> None:
        raise NotImplementedError

    def reply(self, raw: object) -> T:
        raise NotImplementedError


class Batching(Protocol):
    """What `run_async` needs of a batcher: reads into shared MGETs, writes into pipelines."""

    async def mget(self, keys: list[str]) -> list[Raw]: ...

    async def command(self, step: Pipelined[T]) -> T: ...


@dataclass(slots=True)
class LocalCall(Generic[T]):
    """Blocking local work; must not raise (it reports failure in its result)."""

    function: Callable[..., T]
    args: tuple[Any, ...] = ()

    def __iter__(self) -> Generator[Step, object, T]:
        return cast(T, (yield self))


Step = RedisStep[Any] | LocalCall[Any]
Plan = Generator[Step, object, T]


@dataclass(slots=True)
class Ping(RedisStep[bool]):
    def sync(self, client: redis.Redis) -> bool:
        return client.ping()

    async def aio(self, client: aioredis.Redis) -> bool:
        return await client.ping()


@dataclass(slots=True)
class Get(RedisStep[Raw]):
    key: str

    def sync(self, client: redis.Redis) -> Raw:
        return client.get(self.key)

    async def aio(self, client: aioredis.Redis) -> Raw:
        return await client.get(self.key)


@dataclass(slots=True)
class MGet(RedisStep[list[Raw]]):
    """MGET; on Cluster one MGET per slot (a multi-slot MGET fails with CROSSSLOT), pipelined
    per node with the nodes queried concurrently (`app/cache/cluster_mget.py`)."""

    keys: list[str]

    def sync(self, client: redis.Redis) -> list[Raw]:
        if is_cluster(client):
            return mget_sync(client, self.keys)
        return client.mget(self.keys)

    async def aio(self, client: aioredis.Redis) -> list[Raw]:
        if is_cluster(client):
            return await mget_async(cast(AsyncRedisCluster, client), self.keys)
        return await client.mget(self.keys)


@dataclass(slots=True)
class Set(Pipelined[bool]):
    """SET with an optional expiry in milliseconds; `only_if_absent` is NX. True when set."""

    key: str
    value: bytes | str
    px: int | None = None
    only_if_absent: bool = False

    def sync(self, client: redis.Redis) -> bool:
        return bool(client.set(self.key, self.value, px=self.px, nx=self.only_if_absent))

    async def aio(self, client: aioredis.Redis) -> bool:
        return bool(await client.set(self.key, self.value, px=self.px, nx=self.only_if_absent))

    def queue(self, pipe: Pipeline) -> None:
        pipe.set(self.key, self.value, px=self.px, nx=self.only_if_absent)

    def reply(self, raw: object) -> bool:
        return bool(raw)


@dataclass(slots=True)
class Delete(Pipelined[int]):
    key: str

    def sync(self, client: redis.Redis) -> int:
        return client.delete(self.key)

    async def aio(self, client: aioredis.Redis) -> int:
        return await client.delete(self.key)

    def queue(self, pipe: Pipeline) -> None:
        pipe.delete(self.key)

    def reply(self, raw: object) -> int:
        return int(cast(int, raw))


@dataclass(slots=True)
class Exists(RedisStep[bool]):
    key: str

    def sync(self, client: redis.Redis) -> bool:
        return bool(client.exists(self.key))

    async def aio(self, client: aioredis.Redis) -> bool:
        return bool(await client.exists(self.key))


@dataclass(slots=True)
class Ttl(RedisStep[int]):
    """Seconds left; -1 without expiry, -2 when absent."""

    key: str

    def sync(self, client: redis.Redis) -> int:
        return client.ttl(self.key)

    async def aio(self, client: aioredis.Redis) -> int:
        return await client.ttl(self.key)


@dataclass(slots=True)
class Scan(RedisStep[tuple[int, list[bytes | str]]]):
    cursor: int
    match: str
    count: int = 1000

    def sync(self, client: redis.Redis) -> tuple[int, list[bytes | str]]:
        if is_cluster(client):  # every primary, to the end, in one step (cursor 0)
            return 0, list(client.scan_iter(match=self.match, count=self.count))
        cursor, keys = client.scan(self.cursor, match=self.match, count=self.count)
        return int(cursor), list(keys)

    async def aio(self, client: aioredis.Redis) -> tuple[int, list[bytes | str]]:
        if is_cluster(client):
            return 0, [key async for key in client.scan_iter(match=self.match, count=self.count)]
        cursor, keys = await client.scan(self.cursor, match=self.match, count=self.count)
        return int(cursor), list(keys)


@dataclass(slots=True)
class Eval(RedisStep[int]):
    """A Lua script whose reply is an integer."""

    script: str
    keys: Sequence[str]
    args: Sequence[str]

    def sync(self, client: redis.Redis) -> int:
        return int(client.eval(self.script, len(self.keys), *self.keys, *self.args))

    async def aio(self, client: aioredis.Redis) -> int:
        return int(await client.eval(self.script, len(self.keys), *self.keys, *self.args))


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
            try:
                # Inside the try: a sync RedisCluster connects when built, and may fail.
                client = client or client_factory()
                result = step.sync(client)
            except Exception as exc:
                step = _throw_mapped(plan, exc)
            else:
                step = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def run_async(plan: Plan[T], client_factory: Callable[[], aioredis.Redis],
                    batcher: Batching | None = None) -> T:
    """Drive `plan` on an async client; with a `batcher`, MGETs and writes share round trips
    with the other calls in flight (the batcher sends a lone call at once, as is)."""
    client: aioredis.Redis | None = None
    try:
        step = next(plan)
        while True:
            if isinstance(step, LocalCall):
                step = plan.send(await asyncio.to_thread(step.function, *step.args))
                continue
            try:
                result: object
                if batcher is not None and isinstance(step, MGet):
                    result = await batcher.mget(step.keys)
                elif batcher is not None and isinstance(step, Pipelined):
                    result = await batcher.command(step)
                else:
                    client = client or client_factory()
                    result = await step.aio(client)
            except Exception as exc:
                step = _throw_mapped(plan, exc)
            else:
                step = plan.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


# --- steps for other layers' shared state (app/cache/shared.py) ------------------------------
@dataclass(slots=True)
class PTtl(RedisStep[int]):
    key: str

    def sync(self, client: redis.Redis) -> int:
        return client.pttl(self.key)

    async def aio(self, client: aioredis.Redis) -> int:
        return await client.pttl(self.key)


@dataclass(slots=True)
class ZIncrBy(RedisStep[float]):
    key: str
    amount: float
    member: str

    def sync(self, client: redis.Redis) -> float:
        return float(client.zincrby(self.key, self.amount, self.member) or 0.0)

    async def aio(self, client: aioredis.Redis) -> float:
        return float(await client.zincrby(self.key, self.amount, self.member) or 0.0)


@dataclass(slots=True)
class ZTrim(RedisStep[int]):
    """Keep the `keep` highest-scored members of a sorted set; returns how many went."""

    key: str
    keep: int

    def sync(self, client: redis.Redis) -> int:
        return int(client.zremrangebyrank(self.key, 0, -(self.keep + 1)))

    async def aio(self, client: aioredis.Redis) -> int:
        return int(await client.zremrangebyrank(self.key, 0, -(self.keep + 1)))


@dataclass(slots=True)
class ZTop(RedisStep[list[tuple[bytes | str, float]]]):
    """The `count` highest-scored members with their scores, highest first."""

    key: str
    count: int

    def sync(self, client: redis.Redis) -> list[tuple[bytes | str, float]]:
        return _scored(client.zrevrange(self.key, 0, self.count - 1, withscores=True))

    async def aio(self, client: aioredis.Redis) -> list[tuple[bytes | str, float]]:
        return _scored(await client.zrevrange(self.key, 0, self.count - 1, withscores=True))


def _scored(rows: Any) -> list[tuple[bytes | str, float]]:
    """ZREVRANGE WITHSCORES rows (typed loosely by redis-py) as (member, score) pairs."""
    return [(member, float(score)) for member, score in rows]
