"""Which instances are alive: a heartbeat per instance, and the clean-up after one that died.

Each instance writes its id into the sorted set ``punchline:instances`` scored by the wall-clock
time of its last heartbeat (every tick). An instance whose score is older than
``INSTANCE_TTL_SECONDS`` is dead: the first live instance to remove it from the set (``ZREM``
answers 1 to one caller only) marks the seats it held as disconnected, room by room, through the
normal transition path, and drops its open-connection counts. The rooms an instance holds seats
in are listed in ``punchline:instance:<id>:rooms``.

After an outage every heartbeat is old; so an instance claims others dead only once it has
itself been beating again for a full TTL, which gives them the time to beat too. Should an
instance still find itself declared dead (its entry was gone), it says so (``revived``) and the
game server puts its live connections back in their seats.

In-process mode (no shared store) has no heartbeats: the instance is always alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError

logger = logging.getLogger(__name__)

INSTANCES_KEY = "punchline:instances"


def rooms_key(instance: str) -> str:
    return f"punchline:instance:{instance}:rooms"


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]


class Instances:
    def __init__(self, client: aioredis.Redis | None, instance_id: str, *, ttl: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.id = instance_id
        self.ttl = ttl
        self.clock = clock
        self.peers: set[str] = set()  # other live instances, as of the last heartbeat
        self.revived = False  # the last heartbeat found this instance declared dead
        self._tracked: set[str] = set()  # rooms already listed under this instance
        self._beating_since: float | None = None  # first heartbeat of the current good run
        self._ever_beaten = False

    def alone(self) -> bool:
        """No other instance was alive at the last heartbeat that reached Redis."""
        return not self.peers

    async def heartbeat(self) -> list[str]:
        """Refresh this instance and return the dead instances this caller claimed (each dead
        instance is claimed by one caller only). Raises on a Redis error."""
        if self.client is None:
            return []
        now = self.clock()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zadd(INSTANCES_KEY, {self.id: now})
                pipe.zrangebyscore(INSTANCES_KEY, now - self.ttl, "+inf")
                pipe.zrangebyscore(INSTANCES_KEY, "-inf", f"({now - self.ttl}")
                added, live, dead = await pipe.execute()
        except BaseException:
            self._beating_since = None
            raise
        self.revived = bool(added) and self._ever_beaten
        self._ever_beaten = True
        if self._beating_since is None:
            self._beating_since = now
        if added:
            self._tracked.clear()  # our room list may have been cleaned up with us
        self.peers = {_text(m) for m in live} - {self.id}
        if now - self._beating_since < self.ttl:
            return []  # just back from an outage: let the others beat first
        claimed = []
        for member in dead:
            name = _text(member)
            if await self.client.zrem(INSTANCES_KEY, name):
                claimed.append(name)
        return claimed

    async def track(self, room_code: str) -> None:
        """This instance holds a connection in the room (best effort)."""
        if self.client is None or room_code in self._tracked:
            return
        try:
            await self.client.sadd(rooms_key(self.id), room_code)
            self._tracked.add(room_code)
        except (RedisError, RedisClusterException, OSError):
            logger.warning("could not list room %s under this instance", room_code)

    async def untrack(self, room_code: str) -> None:
        """The room closed: no longer listed under this instance (best effort)."""
        self._tracked.discard(room_code)
        if self.client is None:
            return
        try:
            await self.client.srem(rooms_key(self.id), room_code)
        except (RedisError, RedisClusterException, OSError):
            pass  # a stale entry only costs the clean-up a lookup

    async def rooms_of(self, instance: str) -> list[str]:
        if self.client is None:
            return []
        return [_text(m) for m in await self.client.smembers(rooms_key(instance))]

    async def forget(self, instance: str) -> None:
        if self.client is not None:
            await self.client.delete(rooms_key(instance))

    async def leave(self) -> None:
        """A clean shutdown: marked dead at once, so the next heartbeat of another instance
        cleans up whatever seats are still listed under this one."""
        if self.client is None:
            return
        try:
            await self.client.zadd(INSTANCES_KEY, {self.id: 0})
        except (RedisError, RedisClusterException, OSError):
            pass


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
