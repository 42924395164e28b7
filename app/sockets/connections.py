"""Open connections per client address: a count, not a rate, seen by every instance.

Where the count lives:

- **Redis**, whenever the cache reaches it (``video_cache.shared.available``): one sorted set per
  address, ``punchline:conn:<sha256 of the address, 32 hex>``, whose members are
  ``<instance id>:<sid>``, scored by the time at which the member expires (Redis's own clock, so
  instances need not agree on the time). Each instance refreshes its members every third of
  ``SOCKET_CONNECTION_TTL_SECONDS`` (the heartbeat, run by the game ticker); a member that is not
  refreshed (its instance was killed) stops counting after that TTL. Each script first drops
  expired members, so only live ones count. The key's own TTL is the backstop: an address
  nobody refreshes leaves no key behind.
- **This process's memory**, when Redis is not in use or unreachable: then each instance counts
  its own connections only. The heartbeat writes every open connection back into Redis when
  Redis returns (also after Redis lost its data), so the shared count heals by itself.

Errors of the Redis path are ``CacheBackendError`` (from ``video_cache.shared``); they make the
decision fall back to the local count and are never raised to the socket layer.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable

from app.cache.errors import CacheBackendError
from app.cache.shared import SharedRedis
from app.services.video_cache import video_cache

logger = logging.getLogger(__name__)

KEY_PREFIX = "punchline:conn:"

# Milliseconds on Redis's clock; TIME is allowed in scripts (effects replication, Redis >= 5).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""

# ARGV: member, limit, ttl ms. Reply: the count with the member, or -1 (full, nothing added).
_OPEN = _NOW + """
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return n + 1
"""

# ARGV: ttl ms, members... (re)added with a fresh expiry. Reply: the live count.
_BEAT = _NOW + """
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return redis.call('ZCARD', KEYS[1])
"""

# ARGV: members. Reply: how many were removed.
_CLOSE = """
local n = 0
for i = 1, #ARGV do n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
return n
"""


# KEYS: the instance's set of address keys. ARGV: the address key, ttl ms.
_LIST = """
local n = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
"""

# KEYS: an address key. ARGV: a dead instance's member prefix. Reply: members removed.
_RELEASE = """
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, 1, #ARGV[1]) == ARGV[1] then n = n + redis.call('ZREM', KEYS[1], m) end
end
return n
"""


def instance_key(instance: str) -> str:
    """The address keys an instance counted connections in (for the clean-up after it)."""
    return f"punchline:conn-instance:{instance}"


def key_for(address: str) -> str:
    """The address is hashed: Redis holds no client addresses."""
    return KEY_PREFIX + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]


class ConnectionCounter:
    """Counts this process's open connections per address, in Redis when it can.

    ``shared`` returns the cache's typed Redis commands, or None to count in memory only.
    ``alive(sid)`` tells whether the library still knows a connection: the heartbeat forgets
    connections that vanished without a disconnect.
    """

    def __init__(self, limit: int, ttl: float, shared: Callable[[], SharedRedis | None],
                 alive: Callable[[str], bool] = lambda _sid: True,
                 clock: Callable[[], float] = time.monotonic,
                 instance_id: str | None = None) -> None:
        self.limit = limit
        self.ttl_ms = max(1, round(ttl * 1000))
        self.instance = instance_id if instance_id is not None else uuid.uuid4().hex[:16]
        self._shared = shared
        self._alive = alive
        self._clock = clock
        self._open: dict[str, str] = {}  # sid -> address, every open connection of this process
        self._by_address: dict[str, set[str]] = {}
        self._last_beat = float("-inf")

    def member(self, sid: str) -> str:
        return f"{self.instance}:{sid}"

    def count(self, address: str) -> int:
        """This process's open connections from ``address``."""
        return len(self._by_address.get(address, ()))

    def _redis(self) -> SharedRedis | None:
        shared = self._shared()
        return shared if shared is not None and shared.available else None

    async def open(self, sid: str, address: str) -> bool:
        """Count ``sid`` from ``address``; False (and nothing counted) when the address is full."""
        shared = self._redis()
        counted = False
        if shared is not None:
            try:
                n = await shared.eval(_OPEN, (key_for(address),),
                                      (self.member(sid), str(self.limit), str(self.ttl_ms)))
            except CacheBackendError as exc:
                logger.warning("connection count: Redis failed (%s); counting in this process",
                               exc)
            else:
                if n < 0:
                    return False
                counted = True
                await self._list(shared, key_for(address))
        if not counted and self.count(address) >= self.limit:
            return False
        self._open[sid] = address
        self._by_address.setdefault(address, set()).add(sid)
        return True

    async def _list(self, shared: SharedRedis, key: str) -> None:
        """Remember the address key under this instance, so others can clean up after it."""
        try:
            await shared.eval(_LIST, (instance_key(self.instance),),
                              (key, str(max(self.ttl_ms, 86_400_000))))
        except CacheBackendError:
            pass  # its members still expire after the TTL

    async def release_instance(self, instance: str) -> int:
        """Another instance died: its members stop counting now, not after the TTL."""
        shared = self._redis()
        if shared is None:
            return 0
        released = 0
        try:
            keys = await shared.smembers(instance_key(instance))
            for key in keys:
                released += await shared.eval(_RELEASE, (key,), (f"{instance}:",))
            await shared.delete(instance_key(instance))
        except CacheBackendError:
            pass  # the members expire after the TTL anyway
        return released

    def _forget(self, sid: str) -> str | None:
        address = self._open.pop(sid, None)
        if address is not None:
            sids = self._by_address.get(address)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_address[address]
        return address

    async def close(self, sid: str) -> None:
        """``sid`` is gone. If Redis cannot be told, its member expires after the TTL."""
        address = self._forget(sid)
        if address is not None:
            await self._remove(address, [sid])

    async def _remove(self, address: str, sids: list[str]) -> None:
        shared = self._redis()
        if shared is None:
            return
        try:
            await shared.eval(_CLOSE, (key_for(address),), [self.member(s) for s in sids])
        except CacheBackendError:
            pass  # expires by itself; the outage is logged by the cache

    async def heartbeat(self, force: bool = False) -> None:
        """Refresh this process's members (every third of the TTL; the ticker calls this)."""
        now = self._clock()
        if not force and now - self._last_beat < self.ttl_ms / 3000:
            return
        self._last_beat = now
        for sid in [sid for sid in self._open if not self._alive(sid)]:
            await self.close(sid)  # a connection the library no longer knows
        shared = self._redis()
        if shared is None:
            return
        for address, sids in list(self._by_address.items()):
            beat = list(sids)
            try:
                await shared.eval(_BEAT, (key_for(address),),
                                  [str(self.ttl_ms), *(self.member(s) for s in beat)])
            except CacheBackendError:
                return  # next beat; the cache logs the outage and probes
            closed = [s for s in beat if s not in self._open]
            if closed:  # disconnected while the beat re-added them
                await self._remove(address, closed)

    async def aclose(self) -> None:
        """Shutdown: take this process's members out of Redis now rather than after the TTL."""
        for address, sids in list(self._by_address.items()):
            await self._remove(address, list(sids))
        self._open.clear()
        self._by_address.clear()


def default_shared() -> SharedRedis:
    """The process cache's shared Redis commands (``app.services.video_cache.video_cache``,
    which ``create_app`` configures with the app's settings)."""
    return video_cache.shared
