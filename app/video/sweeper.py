"""Temporary videos go with their cache entry, so that storage does not grow without bound.

Speculative renders and pre-generated popular combinations are cached as *temporary* entries
(TTL `CACHE_TEMPORARY_TTL`). When one expires without having won, its video, poster and sidecar
are deleted by `sweep_temporary`, the same pass for the local folder and for the bucket (one
sweeper rather than a bucket lifecycle rule: temporary and permanent videos share one prefix,
and a promotion only rewrites the sidecar, so no prefix or age rule could tell them apart).

A video is deleted only when all of these hold:

1. its sidecar says temporary (a winner's says permanent, and so does a promotion's);
2. the sidecar is older than `CACHE_TEMPORARY_TTL` (its entry, written at publication, has
   expired by then unless someone wrote it again);
3. the cache has no entry for it: an entry that is there (re-cached) keeps it, and a permanent
   one also repairs the sidecar (a `mark_permanent` lost to an error);
4. the sidecar has not changed during the pass (a render that re-published it meanwhile).

The cache must be trustworthy: with Redis configured and unreachable the pass does nothing
(this process's memory would not know another instance's entries). A video re-rendered between
the check and the delete is found missing by the next caller, which renders it again (the
service's `repairs`). Videos without a sidecar are counted, never deleted.

`TemporarySweeper` runs the pass every `VIDEO_SWEEP_INTERVAL` seconds, together with
`remove_stale_temps` (render files of dead processes). Several instances may sweep the same
storage: deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from app.cache.connection import is_memory_url
from app.cache.errors import CacheBackendError
from app.core.cards import KEY_PREFIX, Combination
from app.video.reindex import age_seconds
from app.video.service import VideoService

logger = logging.getLogger(__name__)

FIRST_DELAY = 60.0  # seconds after start-up before the first pass (never during the boot rush)


@dataclass
class SweepReport:
    scanned: int = 0
    deleted: int = 0
    young: int = 0  # temporary, younger than the TTL
    cached: int = 0  # temporary and expired by age, but still in the cache
    promoted: int = 0  # the cache says permanent: sidecar repaired, kept
    permanent: int = 0
    orphans: int = 0  # no readable sidecar: kept
    temp_files: int = 0  # render files of dead processes removed
    skipped: bool = False  # the cache was not trustworthy: nothing deleted


async def sweep_temporary(service: VideoService) -> SweepReport:
    """One pass over the stored videos; see the module docstring for the rules."""
    report = SweepReport()
    storage, cache = service.storage, service.cache
    report.temp_files = await asyncio.to_thread(storage.remove_stale_temps)
    uses_redis = not is_memory_url(service.settings.redis_url)
    if uses_redis and not await cache.aredis_reachable():
        report.skipped = True
        logger.warning("temporary videos not swept: Redis is unreachable")
        return report
    ttl = service.settings.cache_temporary_ttl
    videos = await asyncio.to_thread(lambda: list(storage.iter_videos()))
    for sha, meta in videos:
        report.scanned += 1
        if meta is None:
            report.orphans += 1
            continue
        if meta.permanent:
            report.permanent += 1
            continue
        age = age_seconds(meta.created_at)
        if age is None or age < ttl:
            report.young += 1
            continue
        try:
            combo = Combination(meta.black_card, meta.white_cards)
        except (TypeError, ValueError):
            report.orphans += 1
            continue
        if combo.key != KEY_PREFIX + sha:
            report.orphans += 1
            continue
        try:
            entry = await cache.aget_entry(combo)
        except CacheBackendError:
            entry = None
        if uses_redis and not cache.shared.available:  # lost during the pass: stop deleting
            report.skipped = True
            logger.warning("temporary video sweep stopped: Redis became unreachable")
            break
        if entry is not None:
            if entry.permanent:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(storage.mark_permanent, sha)
                report.promoted += 1
            else:
                report.cached += 1
            continue
        if await asyncio.to_thread(storage.read_meta, sha) != meta:
            report.young += 1  # re-published during the pass
            continue
        try:
            if await asyncio.to_thread(storage.delete, sha):
                report.deleted += 1
        except OSError as exc:
            logger.warning("could not delete temporary video %s: %s", sha[:12], exc)
    if report.deleted or report.temp_files:
        logger.info("swept %d temporary videos and %d dead render files from %s",
                    report.deleted, report.temp_files, storage.location)
    return report


class TemporarySweeper:
    """`sweep_temporary` every `interval` seconds (0: never), from the lifespan."""

    def __init__(self, service: VideoService, interval: float | None = None,
                 first_delay: float = FIRST_DELAY) -> None:
        self.service = service
        self.interval = service.settings.video_sweep_interval if interval is None else interval
        self.first_delay = min(first_delay, self.interval)
        self.last: SweepReport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="video-sweeper")

    async def _run(self) -> None:
        delay = self.first_delay
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            try:
                self.last = await sweep_temporary(self.service)
            except Exception:
                logger.warning("temporary video sweep failed", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
