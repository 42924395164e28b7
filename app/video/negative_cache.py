"""The negative cache: a combination that failed is not tried again for `video_negative_ttl` s.

A failure is remembered in this process and in Redis (`punchline:video-failed:<sha256>`, with
the TTL as PX), so every instance stops hammering a failing provider, and an instance waiting on
another instance's lock learns of its failure. Redis is reached through the cache facade's typed
commands (`video_cache.shared`); their one error type, `CacheBackendError`, is ignored here: the
copy in this process still holds. A TTL of 0 turns the negative cache off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NoReturn

from app.cache.errors import CacheBackendError
from app.cache.shared import SharedRedis
from app.video.errors import RecentFailureError
from app.video.storage import sha_of_key

FAILED_PREFIX = "punchline:video-failed:"
_MAX_LOCAL = 10_000


class NegativeCache:
    def __init__(self, ttl: float, shared: SharedRedis | None,
                 clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.shared = shared  # None: this process only
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
        if self.shared is None or not self.shared.available:
            return
        name = FAILED_PREFIX + sha_of_key(key)
        try:
            message = await self.shared.get(name)
            if message is None:  # the common case: one round trip
                return
            pttl = await self.shared.pttl(name)
        except CacheBackendError:
            return
        if pttl > 0:
            text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
            self._hit(text, pttl / 1000)

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
        if self.shared is None or not self.shared.available:
            return
        with contextlib.suppress(CacheBackendError):  # still remembered in this process
            await self.shared.set(FAILED_PREFIX + sha_of_key(key), message,
                                  px=int(self.ttl * 1000))
