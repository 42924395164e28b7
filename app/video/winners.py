"""The winners index: the public gallery of winning videos, newest first.

    await service.winners.record(combo)            # a winner's permanent video is ready
    page = await service.winners.page(limit=20)    # /winners, /api/winners
    winner = await service.winners.get(sha)        # /w/{sha}

A winner is identified by its video's content address (the 64-hex `sha`) and carries the
filled-in sentence (`app/video/text.py`), never a player's name. Three places hold it:

- **Redis** (shared by every instance): the sorted set `punchline:winners` (member: sha, score:
  time of the win, epoch seconds) and one string per winner, `punchline:winner:{sha}`, with the
  JSON `{"sentence", "won_at"}`. Reached only through `video_cache.shared`.
- **A record in the storage** beside the video (the folder or the bucket), `{sha}.winner.json`
  (`{"sentence", "won_at", "taken_down"}`). It is the durable truth: the self-healing rebuild
  and `python -m app.cli reindex` rebuild the Redis index from these records (`rebuild`), and a
  take-down is written there so that no rebuild brings the video back.
- **Process memory**, the stand-in without Redis (memory-only cache, or Redis down): loaded from
  the records on disk on first use and kept current by this process's own records and
  take-downs. It does not see what other instances record meanwhile (it re-reads the disk only
  when it is rebuilt).

A room that opted out of the gallery (`public_gallery=false`) is never recorded here: the
caller does not call `record`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cache.errors import CacheBackendError, RedisUnavailable
from app.cache.shared import SharedRedis
from app.core.cards import Combination
from app.video.storage import SHA_RE, VideoStorage, sha_of_key
from app.video.text import compose, sentence

logger = logging.getLogger(__name__)

ZSET_KEY = "punchline:winners"
ENTRY_PREFIX = "punchline:winner:"
RECORD_SUFFIX = ".winner.json"
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Winner:
    sha: str
    sentence: str
    won_at: float  # epoch seconds

    def entry_json(self) -> str:
        return json.dumps({"sentence": self.sentence, "won_at": self.won_at},
                          ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Record:
    """A winner's record on disk."""

    sentence: str
    won_at: float
    taken_down: bool = False


def sentence_of(combo: Combination) -> str:
    """The filled-in sentence of a combination, as the video shows it."""
    black, whites = combo.display()
    return sentence(compose(black, whites))


def _entry_of(sha: str, raw: bytes | str | None) -> Winner | None:
    if raw is None:
        return None
    try:
        data: Any = json.loads(raw)
        return Winner(sha, str(data["sentence"]), float(data["won_at"]))
    except (ValueError, KeyError, TypeError):
        logger.warning("unreadable winners entry for %s", sha[:12])
        return None


class RecordStore:
    """The `{sha}.winner.json` files. Synchronous: call through `asyncio.to_thread`."""

    def __init__(self, storage: VideoStorage) -> None:
        self.storage = storage

    def path(self, sha: str) -> Path:
        return self.storage.path_for(sha).with_name(sha + RECORD_SUFFIX)

    def read(self, sha: str) -> Record | None:
        try:
            raw = self.storage.read_extra(sha, RECORD_SUFFIX)  # the folder or the bucket
            if raw is None:
                return None
            data: Any = json.loads(raw)
            return Record(str(data["sentence"]), float(data["won_at"]),
                          bool(data.get("taken_down", False)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("unreadable winner record for %s: %s", sha[:12], exc)
            return None

    def write(self, sha: str, record: Record) -> None:
        data = json.dumps({"sentence": record.sentence, "won_at": record.won_at,
                           "taken_down": record.taken_down}, ensure_ascii=False, indent=1)
        self.storage.write_extra(sha, RECORD_SUFFIX, data.encode("utf-8"))  # atomically

    def listed(self) -> list[Winner]:
        """Every public winner on disk: a record, not taken down, and its video present."""
        out = []
        for sha, _meta in self.storage.iter_videos():
            record = self.read(sha)
            if record is not None and not record.taken_down:
                out.append(Winner(sha, record.sentence, record.won_at))
        return out


class WinnersIndex:
    def __init__(self, shared: SharedRedis, storage: VideoStorage,
                 clock: Callable[[], float] = time.time, *, uses_redis: bool = True) -> None:
        self.shared = shared
        self.uses_redis = uses_redis  # False with REDIS_URL=memory://
        self.storage = storage
        self.records = RecordStore(storage)
        self.clock = clock
        self._memory: dict[str, Winner] | None = None  # loaded from disk on first use

    # --- the memory stand-in --------------------------------------------------------------
    async def _mem(self) -> dict[str, Winner]:
        if self._memory is None:
            listed = await asyncio.to_thread(self.records.listed)
            if self._memory is None:  # another task may have loaded it meanwhile
                self._memory = {w.sha: w for w in listed}
        return self._memory

    # --- writing ---------------------------------------------------------------------------
    async def record(self, combo: Combination) -> Winner | None:
        """Add a winner whose (permanent) video is stored; None if it was taken down before.

        The same combination winning again moves up to the top (its time is the latest win).
        """
        sha = sha_of_key(combo.key)
        if not await asyncio.to_thread(self.storage.exists, sha):
            logger.warning("winner %s has no stored video; not in the gallery", sha[:12])
            return None
        previous = await asyncio.to_thread(self.records.read, sha)
        if previous is not None and previous.taken_down:
            return None
        winner = Winner(sha, sentence_of(combo), round(self.clock(), 3))
        await asyncio.to_thread(self.records.write, sha,
                                Record(winner.sentence, winner.won_at))
        if await asyncio.to_thread(self.storage.poster, sha) is None:
            # A video stored before posters existed (or whose poster failed): try once more.
            await asyncio.to_thread(self.storage.write_poster, sha)
        await self._index(winner)
        return winner

    async def _index(self, winner: Winner) -> None:
        (await self._mem())[winner.sha] = winner
        if not self.shared.available:
            return
        try:
            await self.shared.set(ENTRY_PREFIX + winner.sha, winner.entry_json())
            await self.shared.zadd(ZSET_KEY, winner.sha, winner.won_at)
        except CacheBackendError as exc:
            logger.warning("winner %s not indexed in Redis (%s); the rebuild adds it",
                           winner.sha[:12], exc)

    async def take_down(self, sha: str) -> bool:
        """Remove a winner from the gallery for good; False if `sha` is no known winner.

        With Redis configured, it must be reachable: otherwise `RedisUnavailable` is raised
        before anything changes (Redis would go on listing the winner after the outage, since
        a rebuild adds and never deletes). A failure after the record on disk is written also
        raises; calling again finishes the job.
        """
        if not SHA_RE.fullmatch(sha):
            return False
        if self.uses_redis and not self.shared.available:
            raise RedisUnavailable("Redis is unreachable; nothing was taken down")
        record = await asyncio.to_thread(self.records.read, sha)
        indexed = await self.get(sha, disk=False)
        if indexed is None and (record is None or record.taken_down):
            return False  # never a winner, or already taken down
        base = record or Record(indexed.sentence if indexed else "",
                                indexed.won_at if indexed else self.clock())
        await asyncio.to_thread(self.records.write, sha,
                                Record(base.sentence, base.won_at, taken_down=True))
        (await self._mem()).pop(sha, None)
        if self.shared.available:
            await self.shared.zrem(ZSET_KEY, sha)
            await self.shared.delete(ENTRY_PREFIX + sha)
        logger.info("winner %s taken down", sha[:12])
        return True

    async def rebuild(self) -> int:
        """Index every public winner on disk (the self-healing rebuild, the CLI reindex)."""
        listed = await asyncio.to_thread(self.records.listed)
        self._memory = {w.sha: w for w in listed}
        if not self.shared.available:
            return len(listed)
        for winner in listed:  # raises CacheBackendError on an outage: the healer retries
            await self.shared.set(ENTRY_PREFIX + winner.sha, winner.entry_json())
            await self.shared.zadd(ZSET_KEY, winner.sha, winner.won_at)
        return len(listed)

    # --- reading ---------------------------------------------------------------------------
    async def page(self, limit: int = 20, before: float | None = None
                   ) -> tuple[list[Winner], float | None]:
        """Up to `limit` winners won strictly before `before`, newest first, and the cursor of
        the next page (None on the last)."""
        limit = max(1, min(limit, MAX_PAGE))
        if self.shared.available:
            try:
                return await self._redis_page(limit, before)
            except CacheBackendError as exc:
                logger.warning("winners index unavailable in Redis (%s); using memory", exc)
        rows = sorted((w for w in (await self._mem()).values()
                       if before is None or w.won_at < before),
                      key=lambda w: (w.won_at, w.sha), reverse=True)
        return rows[:limit], rows[limit - 1].won_at if len(rows) > limit else None

    async def _redis_page(self, limit: int, before: float | None
                          ) -> tuple[list[Winner], float | None]:
        rows = await self.shared.zbelow(ZSET_KEY, before, limit + 1)
        shas = [m.decode() if isinstance(m, bytes) else m for m, _ in rows]
        more = len(shas) > limit
        shas = shas[:limit]
        raws = await self.shared.mget([ENTRY_PREFIX + sha for sha in shas]) if shas else []
        winners = [w for sha, raw in zip(shas, raws, strict=True)
                   if (w := _entry_of(sha, raw)) is not None]
        return winners, rows[limit - 1][1] if more else None

    async def get(self, sha: str, *, disk: bool = True) -> Winner | None:
        """The listed winner of this sha, or None (unknown, opted out or taken down).

        Missing from the index but recorded on disk (Redis lost its data and the rebuild has
        not run yet), a winner is still found when `disk` is true.
        """
        if not SHA_RE.fullmatch(sha):
            return None
        winner: Winner | None = None
        if self.shared.available:
            try:
                winner = _entry_of(sha, await self.shared.get(ENTRY_PREFIX + sha))
            except CacheBackendError as exc:
                logger.warning("winners index unavailable in Redis (%s); using memory", exc)
                winner = (await self._mem()).get(sha)
        else:
            winner = (await self._mem()).get(sha)
        if winner is None and disk:
            record = await asyncio.to_thread(self.records.read, sha)
            if (record is not None and not record.taken_down
                    and await asyncio.to_thread(self.storage.exists, sha)):
                winner = Winner(sha, record.sentence, record.won_at)
        return winner
