"""The cross-instance generation lock: one per combination, `punchline:video-lock:<sha256>`.

The lock and its keeper are the cache layer's (`app/cache/lock.py`: SET NX PX with a token,
compare-and-act Lua release and extension, a keeper that extends every TTL/3), reached through
`video_cache.shared`, so every Redis failure arrives as `CacheBackendError`. The TTL
(`video_generation_lock_ttl`) only matters when the holder dies. A holder that loses its lock
(it expired, another instance took it) may make a duplicate render: harmless, the file is
content-addressed.

    lock = RedisLock(video_cache.shared, LOCK_PREFIX + sha, ttl)
    if await lock.acquire():
        async with LockKeeper(lock):
            ...  # generate; the lock is released on the way out
"""

from __future__ import annotations

from app.cache.lock import LockKeeper, RedisLock

__all__ = ["LOCK_PREFIX", "LockKeeper", "RedisLock"]

LOCK_PREFIX = "punchline:video-lock:"
