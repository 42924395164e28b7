"""Rebuild cache entries from the stored videos' sidecars, in the folder or the bucket.

Run by hand (`python -m app.cli reindex`), and by the server itself when Redis comes back
without its data (`index_healer`, see app/cache/healer.py).

For each `{sha256}.mp4` with a valid `{sha256}.json`: if the cache has no entry, write one
(permanent as recorded; temporary ones only while younger than `cache_temporary_ttl`); if the
cache holds it as temporary but the sidecar says permanent, promote it. Entries that exist are
otherwise left alone. Then the winners index (the public gallery, app/video/winners.py) is
rebuilt from the `{sha256}.winner.json` records: taken-down winners stay out.

Only the storage interface is used (`iter_videos`, `url_for`, the winner records), so it works
the same from the local folder and from an S3-compatible bucket (`VIDEO_STORAGE`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.cache.healer import IndexHealer
from app.core.cards import KEY_PREFIX, Combination
from app.video.service import VideoService

logger = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    scanned: int = 0
    restored: int = 0
    promoted: int = 0
    present: int = 0
    expired: int = 0
    orphans: int = 0  # mp4 without a readable sidecar
    mismatched: int = 0  # sidecar texts do not hash to the file name
    winners: int = 0  # winners listed in the gallery after the run


REPORT_FIELDS = ("scanned", "restored", "promoted", "present", "expired", "orphans",
                 "mismatched", "winners")


def age_seconds(created_at: str) -> float | None:
    """Seconds since an ISO-8601 time (naive means UTC); None if it is not one."""
    try:
        created = datetime.fromisoformat(created_at)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (datetime.now(UTC) - created).total_seconds()


async def reindex(
    service: VideoService, *, dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ReindexReport:
    report = ReindexReport()
    storage = service.storage
    videos = await asyncio.to_thread(lambda: list(storage.iter_videos()))
    ttl = service.settings.cache_temporary_ttl
    for sha, meta in videos:
        report.scanned += 1
        outcome = "orphan"
        if meta is None:
            report.orphans += 1
        else:
            try:
                combo: Combination | None = Combination(meta.black_card, meta.white_cards)
            except (TypeError, ValueError):  # cards the rules refuse cannot be keyed
                combo = None
            if combo is None or combo.key != meta.key or meta.key != KEY_PREFIX + sha:
                report.mismatched += 1
                outcome = "mismatched"
                logger.warning("sidecar of %s does not match its name; skipped", sha[:12])
            else:
                outcome = await _restore(service, sha, combo, meta.permanent, meta.created_at,
                                         ttl, dry_run)
                setattr(report, outcome, getattr(report, outcome) + 1)
        if progress:
            progress(outcome)
    if dry_run:
        report.winners = len(await asyncio.to_thread(service.winners.records.listed))
    else:
        report.winners = await service.winners.rebuild()
    return report


async def _restore(
    service: VideoService, sha: str, combo: Combination, permanent: bool, created_at: str,
    ttl: int, dry_run: bool,
) -> str:
    cache = service.cache
    url = service.storage.url_for(sha)
    entry = await cache.aget_entry(combo)
    if entry is not None:
        if permanent and not entry.permanent:
            if not dry_run:
                await cache.aset(combo, entry.video_url, permanent=True)
            return "promoted"
        return "present"
    age = age_seconds(created_at)
    if not permanent and (age is None or age >= ttl):
        return "expired"
    if not dry_run:
        await cache.aset(combo, url, permanent=permanent)
    return "restored"


def index_healer(service: VideoService) -> IndexHealer:
    """The healer that rebuilds `service`'s index when Redis loses its data.

    Start it in the lifespan after the cache (`healer.start()`), stop it on shutdown
    (`await healer.stop()`).
    """
    async def rebuild(progress: Callable[[int], None]) -> int:
        scanned = 0

        def step(outcome: str) -> None:
            nonlocal scanned
            scanned += 1
            progress(scanned)

        report = await reindex(service, progress=step)
        logger.info("Index rebuild: %s", ", ".join(
            f"{name} {getattr(report, name)}" for name in REPORT_FIELDS))
        return report.restored + report.promoted

    cache = service.cache
    return IndexHealer(cache.core, cache.shared, rebuild,
                       service.settings.cache_index_check_interval)
