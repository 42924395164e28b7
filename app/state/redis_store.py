"""Room records in Redis, shared by every instance.

Keys (each room's keys share the hash tag ``{CODE}``, so the scripts below, which touch a room
and its history together, also run on Redis Cluster):

- ``punchline:room:{CODE}``: a hash, ``v`` (version) and ``s`` (the record's JSON);
- ``punchline:room:{CODE}:history``: a list of finished rounds, newest last;
- ``punchline:rooms:due``: a sorted set, room code by the wall-clock time it next needs a tick.

Both room keys carry a TTL a little longer than ``ROOM_IDLE_SECONDS``, renewed on every save: a
room whose instances all died disappears by itself.

With replicas (Sentinel, Cluster), creations and saves wait for one (``app/state/replicas.py``),
so an acknowledged move survives a failover.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError

from app.cache.replication import ScriptCall
from app.state.replicas import RoomReplicas, Save
from app.state.store import HISTORY_LIMIT, StoreUnavailable

T = TypeVar("T")

ROOM_PREFIX = "punchline:room:"
DUE_KEY = "punchline:rooms:due"

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 's', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# ARGV: expected version ('' for a forced write, with ARGV[4] the version to write), text, ttl
# ms, new version, outcomes...
_SAVE = f"""
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if #ARGV > 4 then
  for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], -{HISTORY_LIMIT}, -1)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
"""

_DELETE = """
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

# ARGV: now, lease until, limit.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, code in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], code) end
return due
"""


def room_key(code: str) -> str:
    return f"{ROOM_PREFIX}{{{code}}}"


def history_key(code: str) -> str:
    return f"{ROOM_PREFIX}{{{code}}}:history"


def room_keys(code: str) -> tuple[str, str]:
    return room_key(code), history_key(code)


class RedisRoomStore:
    shared = True

    def __init__(self, client: aioredis.Redis, wait_ms: int = 0) -> None:
        self.client = client
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._claim = client.register_script(_CLAIM)
        self.replicas = RoomReplicas(client, wait_ms, room_keys)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        # RedisClusterException: redis-py's "no cluster node answers" is not a RedisError.
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"room store: {type(exc).__name__}") from exc

    async def create(self, code: str, text: str, ttl: float) -> bool:
        keys: list[str] = [room_key(code)]
        args: list[str | int] = [text, _ms(ttl)]
        done = await self._call(lambda: self.replicas.run(
            code, ScriptCall(_CREATE, tuple(keys), tuple(args)),
            lambda: self._create(keys=keys, args=args), Save(1, text, _ms(ttl))))
        return bool(done)

    async def load(self, code: str) -> tuple[int, str] | None:
        got: list[Any] = await self._call(lambda: self.client.hmget(room_key(code), "v", "s"))
        if got[0] is None or got[1] is None:
            return None
        return int(got[0]), got[1]

    async def save(self, code: str, expected: int, text: str, outcomes: list[str],
                   ttl: float) -> bool:
        if code in self.replicas.held:  # a held save first, in case the failover lost it
            await self._call(lambda: self.replicas.restore(code))
        return await self._write(code, str(expected), expected + 1, text, outcomes, ttl)

    async def force(self, code: str, version: int, text: str, outcomes: list[str],
                    ttl: float) -> None:
        await self._write(code, "", version, text, outcomes, ttl)

    async def _write(self, code: str, expected: str, version: int, text: str,
                     outcomes: list[str], ttl: float) -> bool:
        keys = room_keys(code)
        args: tuple[str | int, ...] = (expected, text, _ms(ttl), version, *outcomes)
        done = await self._call(lambda: self.replicas.run(
            code, ScriptCall(_SAVE, keys, args),
            lambda: self._save(keys=keys, args=args), Save(version, text, _ms(ttl), outcomes)))
        return bool(done)

    async def delete(self, code: str, expected: int) -> bool:
        done = await self._call(lambda: self._delete(keys=room_keys(code), args=[str(expected)]))
        if done:
            self.replicas.forget(code)
            await self._call(lambda: self.client.zrem(DUE_KEY, code))
        return bool(done)

    async def confirm(self) -> int:
        """Re-write saves no replica confirmed yet (see ``app/state/replicas.py``)."""
        return await self._call(self.replicas.confirm)

    async def version(self, code: str) -> int | None:
        got = await self._call(lambda: self.client.hget(room_key(code), "v"))
        return int(got) if got is not None else None

    async def history(self, code: str) -> list[str]:
        got: list[Any] = await self._call(lambda: self.client.lrange(history_key(code), 0, -1))
        return [g.decode() if isinstance(g, bytes) else g for g in got]

    async def schedule(self, code: str, at: float) -> None:
        await self._call(lambda: self.client.zadd(DUE_KEY, {code: at}))

    async def claim_due(self, now: float, lease: float, limit: int) -> list[str]:
        got: list[Any] = await self._call(lambda: self._claim(keys=[DUE_KEY],
                                                              args=[now, now + lease, limit]))
        return [g.decode() if isinstance(g, bytes) else g for g in got]

    async def count(self) -> int:
        return int(await self._call(lambda: self.client.zcard(DUE_KEY)))

    async def unschedule(self, code: str) -> None:
        await self._call(lambda: self.client.zrem(DUE_KEY, code))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
