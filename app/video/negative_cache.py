"""The negative cache: a combination that failed is not tried again for `video_negative_ttl` s.

A failure is remembered in this process and in Redis (`punchline:video-failed:<sha256>`, with
the TTL as PX), so every instance stops hammering a failing provider, and an instance waiting on
another instance's lock learns of its failure. Redis errors are ignored: the copy in this
process still holds. A TTL of 0 turns the negative cache off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import NoReturn

import redis.asyncio as aioredis

from app.video.errors import REDIS_ERRORS, RecentFailureError
from app.video.storage import sha_of_key

FAILED_PREFIX = "punchline:video-failed:"
_MAX_LOCAL = 10_000


class NegativeCache:
    def __init__(
        self,
        ttl: float,
        redis: Callable[[], aioredis.Redis | None],
        clock: Callable[[], float],
    ) -> None:
        self.ttl = ttl
        self._redis = redis
        self._clock = clock
        self._local: dict[str, tuple[float, str]] = {}  # key -> (expiry on the clock, message)
        self.hits = 0

    async def check(self, key: str) -> None:
        """Raise `RecentFailureError` if `key` failed less than `ttl` seconds ago."""
        if self.ttl <= 0:
            return
        now = self._clock()
        local = self._local.get(key)
        if local is not None:
            if local[0] > now:
                self._hit(local[1], local[0] - now)
            del self._local[key]
        client = self._redis()
        if client is None:
            return
        try:
            name = FAILED_PREFIX + sha_of_key(key)
            message, pttl = await asyncio.gather(client.get(name), client.pttl(name))
        except REDIS_ERRORS:
            return
        if message is not None and pttl and pttl > 0:
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
            self._hit(str(text), pttl / 1000)

    def _hit(self, message: str, retry_after: float) -> NoReturn:
        self.hits += 1
        raise RecentFailureError(f"generation failed recently: {message}", retry_after)

    async def remember(self, key: str, message: str) -> None:
        """Record a failure of `key` here and in Redis."""
        if self.ttl <= 0:
            return
        message = message[:500]
        now = self._clock()
        self._local[key] = (now + self.ttl, message)
        if len(self._local) > _MAX_LOCAL:
            self._local = {k: v for k, v in self._local.items() if v[0] > now}
        client = self._redis()
        if client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await client.set(FAILED_PREFIX + sha_of_key(key), message,
                                 px=int(self.ttl * 1000))
