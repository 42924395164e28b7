"""A Redis lock for one generation across instances: SET NX PX with a random token.

Release and extension are compare-and-act Lua scripts, so an instance whose lock expired can
never delete or extend the lock that another instance took over.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

LOCK_PREFIX = "punchline:video-lock:"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class RedisLock:
    def __init__(self, client: aioredis.Redis, name: str, ttl: float) -> None:
        self.client = client
        self.name = name
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = secrets.token_hex(16)

    async def acquire(self) -> bool:
        return bool(await self.client.set(self.name, self.token, nx=True, px=self.ttl_ms))

    async def release(self) -> bool:
        result = await self.client.eval(_RELEASE, 1, self.name, self.token)
        return bool(result)

    async def extend(self) -> bool:
        result = await self.client.eval(
            _EXTEND, 1, self.name, self.token, str(self.ttl_ms)
        )
        return bool(result)

    async def is_held(self) -> bool:
        """Whether anyone holds the lock now."""
        return bool(await self.client.exists(self.name))
