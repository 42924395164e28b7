"""Adaptive batching of concurrent async Redis calls: reads into MGETs, writes into pipelines.

A call that finds no round trip in flight goes out at once as its own command: no timer and no
extra event-loop tick, so a lone caller pays what raw redis.asyncio pays. Calls that arrive while
a round trip is in flight queue up. When it returns, one drain task sends everything queued, in
arrival order, as one round trip: consecutive reads merged into MGETs of at most `max_keys` keys,
each write as its own command in the same pipeline. Redis runs a pipeline's commands in order,
and only one round trip per batcher is in flight, so calls reach Redis in the order they were
made: per-key order holds.

Each caller gets back exactly what its own command returned, or the exception the round trip
raised, and maps it in its own task (the memory fallback of `CacheCore`). So one caller's error,
cancellation or bug never reaches its batch-mates: a cancelled caller is skipped, a cancelled
leader hands the queue to a drain task on its way out.

A batch larger than `max_keys` keys is sent `max_keys` keys at a time; a single call larger
than that (an `aget_many` of many keys) goes out alone as several MGETs in one pipeline.

Cluster: a multi-slot MGET fails with CROSSSLOT, so on a Cluster client `_execute` splits the
batch's reads into one MGET per slot, and sends them with the writes in one cluster pipeline:
redis-py groups a cluster pipeline's commands per node, one connection each, and queries the
nodes concurrently. A key's slot decides its node and connection, so per-key order still holds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from app.cache.cluster_mget import mget_async
from app.cache.connection import is_cluster
from app.cache.plans import Pipelined, Raw

T = TypeVar("T")


class _Call:
    """One queued caller: a read of `keys` (an MGET, or a GET when `single`), or a write."""

    __slots__ = ("future", "keys", "single", "size", "step")

    def __init__(self, future: asyncio.Future[Any], keys: list[str] | None,
                 step: Pipelined[Any] | None = None, single: bool = False) -> None:
        self.future = future
        self.keys = keys
        self.step = step
        self.single = single
        self.size = 1 if keys is None else len(keys)  # keys it adds to the batch


class Batcher:
    """Coalesces the async cache's Redis calls of one event loop.

    `client` returns the loop's `redis.asyncio` client; `blocked` returns why Redis must not
    be asked (the breaker opened while calls were queued), or None. `max_keys` 0 turns
    batching off: every call is its own command, as without a batcher.
    """

    def __init__(self, client: Callable[[], aioredis.Redis], max_keys: int,
                 blocked: Callable[[], str | None] = lambda: None) -> None:
        if not isinstance(max_keys, int) or isinstance(max_keys, bool) or max_keys < 0:
            raise ValueError(f"max_keys must be an int >= 0, not {max_keys!r}")
        self._client = client
        self.max_keys = max_keys
        self._blocked = blocked
        self._queue: deque[_Call] = deque()
        self._busy = False  # a round trip of ours is in flight (a lone call or the drain)
        self._drain: asyncio.Task[None] | None = None
        self.round_trips = 0  # batched round trips sent by the drain
        self.batched_calls = 0  # calls that travelled in them

    # --- the three calls ------------------------------------------------------------------------
    async def get(self, key: str) -> Raw:
        """GET `key`, or join the next MGET when a round trip is in flight."""
        if self._busy:  # the hottest path under load: no helper calls
            future: asyncio.Future[Raw] = asyncio.get_running_loop().create_future()
            self._queue.append(_Call(future, [key], single=True))
            # Not shielded: cancelling this caller cancels its own future, which the drain
            # skips.
            return await future
        if not self.max_keys:
            return await self._client().get(key)
        self._busy = True
        try:
            return await self._client().get(key)
        finally:
            self._hand_off()

    async def mget(self, keys: list[str]) -> list[Raw]:
        if self._busy:
            return cast(list[Raw], await self._join(_Call(self._future(), list(keys))))
        if not self.max_keys:
            return await _mget(self._client(), keys)
        self._busy = True
        try:
            if len(keys) <= self.max_keys:
                return await _mget(self._client(), keys)
            (reply,) = await self._execute([_Call(self._future(), list(keys))])
            if isinstance(reply, Exception):
                raise reply
            return cast(list[Raw], reply)
        finally:
            self._hand_off()

    async def command(self, step: Pipelined[T]) -> T:
        """A write (SET, DEL): alone at once, or in the next pipeline."""
        if self._busy:
            return step.reply(await self._join(_Call(self._future(), None, step)))
        if not self.max_keys:
            return await step.aio(self._client())
        self._busy = True
        try:
            return await step.aio(self._client())
        finally:
            self._hand_off()

    async def aclose(self) -> None:
        """Stop the drain; calls still queued fail (and fall back to memory)."""
        drain = self._drain
        if drain is not None and not drain.done():
            drain.cancel()
            try:
                await drain
            except asyncio.CancelledError:
                pass
        self._fail_queue(RedisConnectionError("the cache client was closed"))

    # --- queueing -------------------------------------------------------------------------------
    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _join(self, call: _Call) -> object:
        self._queue.append(call)
        return await call.future  # not shielded: see `get`

    def _hand_off(self) -> None:
        """The lone round trip ended (returned, raised or was cancelled): serve the queue."""
        if self._queue:
            # Stays busy: the drain owns the connection order from here.
            self._drain = asyncio.get_running_loop().create_task(
                self._drain_queue(), name="cache-batch-drain")
        else:
            self._busy = False

    async def _drain_queue(self) -> None:
        batch: list[_Call] = []
        try:
            while self._queue:
                batch = self._take()
                if batch:
                    await self._send(batch)
                batch = []
                # Callers woken by this batch run now and queue their next call, so the next
                # round trip carries them all instead of a batch of one.
                await asyncio.sleep(0)
        finally:
            if batch or self._queue:  # cancelled (close, loop shutdown): nobody may hang
                error = RedisConnectionError("the cache's batch was cancelled")
                for call in batch:
                    _settle(call.future, error)
                self._fail_queue(error)
            self._busy = False
            self._drain = None

    def _take(self) -> list[_Call]:
        """The next batch: calls in arrival order up to `max_keys` keys (at least one call)."""
        batch: list[_Call] = []
        keys = 0
        queue = self._queue
        while queue:
            call = queue[0]
            if call.future.done():  # its caller was cancelled
                queue.popleft()
                continue
            if batch and keys + call.size > self.max_keys:
                break
            queue.popleft()
            batch.append(call)
            keys += call.size
        return batch

    def _fail_queue(self, error: Exception) -> None:
        while self._queue:
            _settle(self._queue.popleft().future, error)

    async def _send(self, batch: list[_Call]) -> None:
        reason = self._blocked()
        if reason is not None:  # the breaker opened meanwhile: go to memory, don't wait
            error = RedisConnectionError(reason)
            for call in batch:
                _settle(call.future, error)
            return
        self.round_trips += 1
        self.batched_calls += len(batch)
        try:
            replies = await self._execute(batch)
        except Exception as exc:  # the whole round trip failed: every caller maps it itself
            for call in batch:
                _settle(call.future, exc)
            return
        for call, reply in zip(batch, replies, strict=True):
            _settle(call.future, reply)

    # --- the round trip -------------------------------------------------------------------------
    async def _execute(self, batch: list[_Call]) -> list[object]:
        """One round trip for `batch`; one reply per call (an Exception for a failed command)."""
        client = self._client()
        if is_cluster(client):
            return await _execute_on_cluster(cast(AsyncRedisCluster, client), batch,
                                             self.max_keys)
        if all(call.keys is not None for call in batch):
            keys = [key for call in batch for key in cast(list[str], call.keys)]
            if len(keys) <= self.max_keys:  # the common case: one MGET, no pipeline
                return _split(batch, await client.mget(keys))
        pipe = client.pipeline(transaction=False)
        layout: list[tuple[list[_Call], int, int]] = []  # calls, first reply, reply count
        run: list[_Call] = []  # consecutive reads, merged into shared MGETs
        sent = 0

        def close_run() -> None:
            nonlocal sent
            if not run:
                return
            keys = [key for call in run for key in cast(list[str], call.keys)]
            count = 0
            for start in range(0, len(keys), self.max_keys):
                pipe.mget(keys[start:start + self.max_keys])
                count += 1
            layout.append((list(run), sent, count))
            sent += count
            run.clear()

        for call in batch:
            if call.step is None:
                run.append(call)
                continue
            close_run()
            call.step.queue(pipe)
            layout.append(([call], sent, 1))
            sent += 1
        close_run()
        replies = await pipe.execute(raise_on_error=False)
        out: list[object] = []
        for calls, first, count in layout:
            part = replies[first:first + count]
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is not None:
                out.extend(error for _ in calls)
            elif calls[0].step is not None:
                out.append(part[0])
            else:
                out.extend(_split(calls, [value for chunk in part for value in chunk]))
        return out


async def _mget(client: aioredis.Redis, keys: list[str]) -> list[Raw]:
    if is_cluster(client):  # one MGET per slot, see MGet in plans.py
        return await mget_async(cast(AsyncRedisCluster, client), keys)
    return await client.mget(keys)


async def _execute_on_cluster(client: AsyncRedisCluster, batch: list[_Call],
                              max_keys: int) -> list[object]:
    """`Batcher._execute` on Cluster: each run of reads as one MGET per slot (at most
    `max_keys` keys each), the writes in between as they are, all in one cluster pipeline."""
    pipe = client.pipeline(transaction=False)
    # Per call group: the calls, and for reads the keys of each MGET sent (None for a write).
    layout: list[tuple[list[_Call], list[list[str]] | None]] = []
    run: list[_Call] = []

    def close_run() -> None:
        if not run:
            return
        by_slot: dict[int, list[str]] = {}
        for call in run:
            for key in cast(list[str], call.keys):
                by_slot.setdefault(key_slot(key.encode()), []).append(key)
        sent: list[list[str]] = []
        for keys in by_slot.values():
            for start in range(0, len(keys), max_keys or len(keys)):
                chunk = keys[start:start + (max_keys or len(keys))]
                pipe.execute_command("MGET", *chunk)  # pipe.mget is barred on Cluster
                sent.append(chunk)
        layout.append((list(run), sent))
        run.clear()

    for call in batch:
        if call.step is None:
            run.append(call)
            continue
        close_run()
        call.step.queue(cast(Any, pipe))
        layout.append(([call], None))
    close_run()
    replies = iter(await pipe.execute(raise_on_error=False))
    out: list[object] = []
    for calls, sent in layout:
        if sent is None:
            out.append(next(replies))
            continue
        values: dict[str, Raw] = {}
        error: object = None
        for chunk in sent:
            reply = next(replies)
            if isinstance(reply, Exception):
                error = error or reply
            else:
                values.update(zip(chunk, reply, strict=True))
        if error is not None:
            out.extend(error for _ in calls)
        else:
            out.extend(_split(calls, [values[key] for call in calls
                                      for key in cast(list[str], call.keys)]))
    return out


def _split(calls: list[_Call], values: list[Raw]) -> list[object]:
    """Hand each read its slice of the merged MGET reply (a GET its one value)."""
    out: list[object] = []
    at = 0
    for call in calls:
        size = call.size
        out.append(values[at] if call.single else values[at:at + size])
        at += size
    return out


def _settle(future: asyncio.Future[Any], reply: object) -> None:
    """Give a caller its reply; a cancelled caller's future is left alone."""
    if future.done():
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)
