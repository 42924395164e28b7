"""Fair admission: the thin layer above the job queue that decides which job goes in next.

The job queue (SAQ) is first in, first out, and knows neither priorities nor rooms. So orders
wait here first, and are admitted into the queue a few at a time (`ADMIT_DEPTH`), in this
order (docs/videos.md, "Priorities and fairness"):

1. by priority: winners, then popular (pre-generation), then speculative;
2. within a priority, rooms take turns (round robin): the next order comes from the room after
   the one served last, so a room that floods wins waits for its own orders only;
3. within a room, first come, first served.

Speculative orders beyond `speculative_max` waiting are dropped (never winners), and each order
waits once per job key (deduplication). Two implementations of one policy: `FairBacklog` in
memory (memory://, and the local fallback during a Redis outage) and `RedisBacklog` (shared by
every instance and worker; Lua scripts make each push and pop atomic). An order popped from the
Redis backlog moves into `admitted` (a hash) in the same script, so an instance dying between the
pop and the enqueue loses nothing: `RenderQueue.recover` re-enqueues admitted orders that have
no job.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from typing import Any

from redis.asyncio import Redis

from app.video.queue_model import Priority, RenderOrder

# Orders admitted into the job queue and not yet taken by a worker, per priority. Small, so
# that a winner arriving behind lower-priority work waits for a few short jobs at most.
ADMIT_DEPTH = {Priority.WINNER: 4, Priority.POPULAR: 1, Priority.SPECULATIVE: 1}


class FairBacklog:
    """The policy in process memory."""

    def __init__(self, speculative_max: int) -> None:
        self.speculative_max = speculative_max
        self._rooms: dict[Priority, OrderedDict[str, deque[RenderOrder]]] = {
            p: OrderedDict() for p in Priority}
        self._keys: set[str] = set()
        self.dropped = 0

    def push(self, order: RenderOrder) -> bool:
        """Add `order`; False when it is already waiting or dropped (speculative, full)."""
        if order.job_key in self._keys:
            return False
        if order.priority is Priority.SPECULATIVE and self.depth(order.priority) >= \
                self.speculative_max:
            self.dropped += 1
            return False
        self._keys.add(order.job_key)
        self._rooms[order.priority].setdefault(order.room, deque()).append(order)
        return True

    def pop(self) -> RenderOrder | None:
        for priority in Priority:
            rooms = self._rooms[priority]
            if not rooms:
                continue
            room, orders = next(iter(rooms.items()))
            order = orders.popleft()
            if orders:
                rooms.move_to_end(room)  # the next room's turn
            else:
                del rooms[room]
            self._keys.discard(order.job_key)
            return order
        return None

    def depth(self, priority: Priority) -> int:
        return sum(len(orders) for orders in self._rooms[priority].values())

    def oldest(self, priority: Priority) -> float | None:
        firsts = [orders[0].enqueued_at for orders in self._rooms[priority].values()]
        return min(firsts) if firsts else None

    def __len__(self) -> int:
        return len(self._keys)


_PUSH = """
if redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return 0 end
local limit = tonumber(ARGV[4])
if limit >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= limit then
  redis.call('SREM', KEYS[3], ARGV[3])
  return -1
end
redis.call('INCR', KEYS[4])
if redis.call('RPUSH', KEYS[2], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[1], ARGV[2]) end
return 1
"""

# Pop the next room's first order into `admitted` (hash: job key -> order, zset: job key ->
# admission time). ARGV[1]: the prefix of the rooms' lists; ARGV[2]: now.
_POP = """
for _ = 1, redis.call('LLEN', KEYS[1]) do
  local room = redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  if not room then return nil end
  local list = ARGV[1] .. room
  local order = redis.call('LPOP', list)
  if redis.call('LLEN', list) == 0 then redis.call('LREM', KEYS[1], 0, room) end
  if order then
    local key = cjson.decode(order)['job_key']
    redis.call('DECR', KEYS[3])
    redis.call('SREM', KEYS[2], key)
    redis.call('HSET', KEYS[4], key, order)
    redis.call('ZADD', KEYS[5], ARGV[2], key)
    return order
  end
end
return nil
"""


class RedisBacklog:
    """The policy in Redis, shared by every web instance and worker."""

    def __init__(self, redis: Redis, prefix: str, speculative_max: int) -> None:
        # One hash tag: every key of the layer lives in one Cluster slot.
        self.redis = redis
        self.prefix = f"{{{prefix}}}:fair"
        self.speculative_max = speculative_max
        self._push = redis.register_script(_PUSH)
        self._pop = redis.register_script(_POP)

    def _ring(self, p: Priority) -> str:
        return f"{self.prefix}:rooms:{p.label}"

    def _room_prefix(self, p: Priority) -> str:
        return f"{self.prefix}:room:{p.label}:"

    def _depth_key(self, p: Priority) -> str:
        return f"{self.prefix}:depth:{p.label}"

    @property
    def waiting_set(self) -> str:
        """Job keys of the orders waiting in the backlog (read by `RenderQueue.locate`)."""
        return f"{self.prefix}:waiting"

    @property
    def admitted_hash(self) -> str:
        return f"{self.prefix}:admitted"

    def admitted_at(self, p: Priority) -> str:
        return f"{self.prefix}:admitted-at:{p.label}"

    async def push(self, order: RenderOrder) -> int:
        """1: waiting; 0: already waiting; -1: dropped (speculative beyond its bound)."""
        p = order.priority
        limit = self.speculative_max if p is Priority.SPECULATIVE else -1
        payload = {**order.to_dict(), "job_key": order.job_key}
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        result = await self._push(
            keys=[self._ring(p), self._room_prefix(p) + order.room, self.waiting_set,
                  self._depth_key(p)],
            args=[raw, order.room, order.job_key, limit])
        return int(result)

    async def pop(self, priority: Priority) -> RenderOrder | None:
        raw = await self._pop(keys=[self._ring(priority), self.waiting_set,
                                    self._depth_key(priority), self.admitted_hash,
                                    self.admitted_at(priority)],
                              args=[self._room_prefix(priority), time.time()])
        return None if raw is None else RenderOrder.from_json(raw)

    async def done(self, order: RenderOrder) -> None:
        """The job of an admitted order is finished (rendered, dead-lettered or dropped)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.admitted_hash, order.job_key)
            pipe.zrem(self.admitted_at(order.priority), order.job_key)
            await pipe.execute()

    async def admitted(self, older_than: float) -> list[RenderOrder]:
        """Admitted orders older than `older_than` seconds (for recovery)."""
        limit = time.time() - older_than
        keys: list[Any] = []
        for p in Priority:
            keys += await self.redis.zrangebyscore(self.admitted_at(p), "-inf", limit)
        if not keys:
            return []
        raws = await self.redis.hmget(self.admitted_hash, keys)
        orders = []
        for key, raw in zip(keys, raws, strict=True):
            if raw is None:  # finished meanwhile, or a leftover time
                for p in Priority:
                    await self.redis.zrem(self.admitted_at(p), key)
                continue
            orders.append(RenderOrder.from_json(raw))
        return orders

    async def waiting(self, priority: Priority) -> int:
        return int(await self.redis.get(self._depth_key(priority)) or 0)

    async def admitted_count(self, priority: Priority) -> int:
        return int(await self.redis.zcard(self.admitted_at(priority)))

    async def oldest(self, priority: Priority) -> float | None:
        """Enqueue time of the oldest order of `priority`, waiting or admitted."""
        times: list[float] = []
        first = await self.redis.zrange(self.admitted_at(priority), 0, 0)
        if first and isinstance(first[0], bytes | str):
            raw = await self.redis.hget(self.admitted_hash, first[0])
            if raw is not None:
                times.append(RenderOrder.from_json(raw).enqueued_at)
        rooms = await self.redis.lrange(self._ring(priority), 0, 999)
        if rooms:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    name = room.decode() if isinstance(room, bytes) else str(room)
                    pipe.lindex(self._room_prefix(priority) + name, 0)
                for raw in await pipe.execute():
                    if raw is not None:
                        times.append(RenderOrder.from_json(raw).enqueued_at)
        return min(times) if times else None
