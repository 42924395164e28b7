"""How often each combination is played: a Redis sorted set, with an in-memory fallback.

The set lives outside the `video:*` keyspace (`punchline:popularity`), so cache scans and purges
never see it. A member is the compact JSON `[black, [white, ...]]` of the combination's
normalised cards, so the top of the set can be turned back into combinations to pre-generate.
Redis is reached through the cache facade's typed commands (`video_cache.shared`); while they
cannot reach it (`CacheBackendError`, or the cache's breaker is open) plays are counted here.
"""

from __future__ import annotations

import json
import logging

from app.cache.errors import CacheBackendError
from app.cache.shared import SharedRedis
from app.core.cards import Combination

logger = logging.getLogger(__name__)

POPULARITY_KEY = "punchline:popularity"
_TRIM_EVERY = 256


def encode_member(combo: Combination) -> str:
    return json.dumps([combo.black, list(combo.whites)], ensure_ascii=False,
                      separators=(",", ":"))


def decode_member(raw: bytes | str) -> Combination | None:
    try:
        data = json.loads(raw)
        black, whites = data
        if isinstance(black, str) and isinstance(whites, list):
            return Combination(black, whites)
    except (ValueError, TypeError):  # CardError is a ValueError: cards under the old rules
        pass
    logger.warning("ignoring a malformed popularity member")
    return None


class PopularityTracker:
    def __init__(
        self,
        shared: SharedRedis | None,
        *,
        key: str = POPULARITY_KEY,
        max_members: int = 10_000,
    ) -> None:
        self.shared = shared  # None: count in this process only
        self.key = key
        self.max_members = max_members
        self._memory: dict[str, float] = {}
        self._records = 0

    def _record_memory(self, member: str) -> None:
        self._memory[member] = self._memory.get(member, 0.0) + 1
        if len(self._memory) > self.max_members:
            keep = sorted(self._memory.items(), key=lambda kv: kv[1], reverse=True)
            self._memory = dict(keep[: int(self.max_members * 0.9)])

    async def record(self, combo: Combination) -> None:
        member = encode_member(combo)
        self._records += 1
        if self.shared is not None and self.shared.available:
            try:
                await self.shared.zincrby(self.key, 1, member)
                if self._records % _TRIM_EVERY == 0:
                    await self.shared.ztrim(self.key, self.max_members)
                return
            except CacheBackendError as exc:
                logger.info("popularity: Redis unavailable (%s), counting in memory", exc)
        self._record_memory(member)

    async def top(self, n: int) -> list[tuple[Combination, float]]:
        """The `n` most played combinations, most played first."""
        if n <= 0:
            return []
        if self.shared is not None and self.shared.available:
            try:
                rows = await self.shared.ztop(self.key, n)
            except CacheBackendError as exc:
                logger.info("popularity: Redis unavailable (%s), reading memory", exc)
            else:
                return [(combo, score) for member, score in rows
                        if (combo := decode_member(member)) is not None]
        ranked = sorted(self._memory.items(), key=lambda kv: kv[1], reverse=True)[:n]
        return [(combo, score) for member, score in ranked
                if (combo := decode_member(member)) is not None]
