"""How often each combination is played: a Redis sorted set, with an in-memory fallback.

The set lives outside the `video:*` keyspace (`punchline:popularity`), so cache scans and purges
never see it. A member is the compact JSON `[black, [white, ...]]` of the cards as played, so the
top of the set can be turned back into combinations to pre-generate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis

from app.video.combos import Combo
from app.video.errors import REDIS_ERRORS

logger = logging.getLogger(__name__)

POPULARITY_KEY = "punchline:popularity"
_TRIM_EVERY = 256


def encode_member(black: str, whites: list[str] | tuple[str, ...]) -> str:
    return json.dumps([black, list(whites)], ensure_ascii=False, separators=(",", ":"))


def decode_member(raw: bytes | str) -> Combo | None:
    try:
        data = json.loads(raw)
        black, whites = data
        if isinstance(black, str) and isinstance(whites, list) and all(
            isinstance(w, str) for w in whites
        ):
            return Combo(black, tuple(whites))
    except (ValueError, TypeError):
        pass
    logger.warning("ignoring a malformed popularity member")
    return None


class PopularityTracker:
    def __init__(
        self,
        redis: Callable[[], aioredis.Redis | None],
        *,
        key: str = POPULARITY_KEY,
        max_members: int = 10_000,
    ) -> None:
        self._redis = redis
        self.key = key
        self.max_members = max_members
        self._memory: dict[str, float] = {}
        self._records = 0

    def _client(self) -> aioredis.Redis | None:
        try:
            return self._redis()
        except REDIS_ERRORS:
            return None

    def _record_memory(self, member: str) -> None:
        self._memory[member] = self._memory.get(member, 0.0) + 1
        if len(self._memory) > self.max_members:
            keep = sorted(self._memory.items(), key=lambda kv: kv[1], reverse=True)
            self._memory = dict(keep[: int(self.max_members * 0.9)])

    async def record(self, black: str, whites: list[str] | tuple[str, ...]) -> None:
        member = encode_member(black, whites)
        self._records += 1
        client = self._client()
        if client is not None:
            try:
                await client.zincrby(self.key, 1, member)
                if self._records % _TRIM_EVERY == 0:
                    await client.zremrangebyrank(self.key, 0, -(self.max_members + 1))
                return
            except REDIS_ERRORS:
                logger.info("popularity: Redis unavailable, counting in memory", exc_info=True)
        self._record_memory(member)

    async def top(self, n: int) -> list[tuple[Combo, float]]:
        """The `n` most played combinations, most played first."""
        if n <= 0:
            return []
        client = self._client()
        if client is not None:
            try:
                rows = cast(
                    list[tuple[bytes, float]],
                    await client.zrevrange(self.key, 0, n - 1, withscores=True),
                )
                out: list[tuple[Combo, float]] = []
                for member, score in rows:
                    combo = decode_member(member)
                    if combo is not None:
                        out.append((combo, float(score)))
                return out
            except REDIS_ERRORS:
                logger.info("popularity: Redis unavailable, reading memory", exc_info=True)
        ranked = sorted(self._memory.items(), key=lambda kv: kv[1], reverse=True)[:n]
        return [(combo, score) for member, score in ranked
                if (combo := decode_member(member)) is not None]
