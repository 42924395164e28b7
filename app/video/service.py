"""The generation service: cache first, then one generation per combination, everywhere.

    url = await get_video_service().get_or_create(combo, permanent=True)

`combo` is a `Combination` (`app.core.cards`): validated, normalised and keyed once, by the game
or at this edge (`get_or_create(black, whites)` builds it). The service looks the cache up by
the key it carries and renders its display form; nothing checks or hashes the cards again.

1. A cache hit returns at once. A hit on a temporary entry when a permanent one is asked for is
   *promoted* (rewritten as permanent) without rendering again.
2. On a miss, callers in this process share one generation (single flight: N callers, one
   render), and the cross-instance lock (`app/video/locks.py`) makes instances share it too:
   the instances that lose the lock poll the cache until the winner publishes.
   Redis is reached only through the cache facade (`video_cache.shared`, typed commands whose
   one error type is `CacheBackendError`); without Redis, the lock is skipped.
3. The provider writes an MP4 into our storage, content-addressed by the cache key; the cache
   stores our URL `/videos/<sha256>.mp4`.
4. A failure is never cached as a success. The negative cache (`app/video/negative_cache.py`)
   remembers it for `video_negative_ttl` seconds so that a failing provider is not hammered.
5. Too many pending generations are refused (`VideoBusyError`), never queued without bound.

How long all this may take is `app/video/deadlines.py`'s business: the socket layer waits
exactly `video_deadline_seconds(settings)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from app.cache.connection import is_memory_url
from app.cache.entry import CacheEntry, utc_now_iso
from app.cache.errors import CacheBackendError
from app.core.cards import Combination
from app.core.config import Settings, get_settings
from app.services.video_cache import HasCards, VideoCache
from app.video.combos import combination_of
from app.video.deadlines import lock_wait_seconds, video_deadline_seconds
from app.video.errors import (
    GenerationWaitTimeout,
    InvalidCardsError,
    VideoBusyError,
    VideoDeadlineExceeded,
    VideoGenerationError,
)
from app.video.http_provider import HttpProvider
from app.video.local import LocalRenderer
from app.video.locks import LOCK_PREFIX, LockKeeper, RedisLock
from app.video.negative_cache import FAILED_PREFIX, NegativeCache
from app.video.popularity import PopularityTracker
from app.video.provider import VideoProvider, VideoRequest
from app.video.storage import VideoMeta, VideoStorage, build_storage
from app.video.winners import Winner, WinnersIndex

if TYPE_CHECKING:
    from app.video.dispatch import VideoDispatcher

__all__ = ["FAILED_PREFIX", "VideoService", "build_provider", "generate_video",
           "get_video_service", "set_video_service", "video_deadline_seconds"]

logger = logging.getLogger(__name__)


def build_provider(settings: Settings, *, pool: str | None = None) -> VideoProvider:
    """The provider named by `video_provider`; `pool` overrides `video_render_pool`."""
    local = LocalRenderer(settings, pool=pool)
    if settings.video_provider == "http":
        return HttpProvider(settings, fallback=local if settings.http_provider_fallback_local
                            else None)
    return local


@dataclass
class _Generation:
    """One generation in this process, shared by every caller of the same key.

    The cache entry and the sidecar are those of `combo` (its key, its normalised cards);
    `request` carries its display texts, which the provider renders.
    """

    request: VideoRequest
    combo: Combination
    permanent: bool
    stored_permanent: bool = False
    task: asyncio.Task[str] | None = None
    fresh: bool = False  # a retry: the negative cache is not asked

    async def check_negative(self, negative: NegativeCache) -> None:
        if not self.fresh:
            await negative.check(self.request.key)

    def adopt(self, entry: CacheEntry) -> str:
        """Finish with a video that is already cached (another flight or instance made it)."""
        self.stored_permanent = entry.permanent
        return entry.video_url


@dataclass
class _Stats:
    hits: int = 0
    misses: int = 0
    generations: int = 0
    joined: int = 0
    lock_waits: int = 0
    lock_extensions: int = 0
    failures: int = 0
    busy: int = 0
    deadline_exceeded: int = 0
    promotions: int = 0
    repairs: int = 0
    render_seconds: float = 0.0
    last_error: str | None = None


class VideoService:
    def __init__(
        self,
        settings: Settings,
        *,
        cache: VideoCache | None = None,
        provider: VideoProvider | None = None,
        storage: VideoStorage | None = None,
        popularity: PopularityTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        if cache is None:
            from app.services.video_cache import video_cache

            cache = video_cache
        self.cache = cache
        self.provider = provider or build_provider(settings)
        self.storage = storage or build_storage(settings)
        self.popularity = popularity or PopularityTracker(cache.shared)
        self.winners = WinnersIndex(cache.shared, self.storage,  # the public gallery
                                    uses_redis=not is_memory_url(settings.redis_url))
        self.clock = clock
        # The lambda reads `self.clock` on every call, so a test may swap the clock later.
        self.negative = NegativeCache(settings.video_negative_ttl, cache.shared,
                                      lambda: self.clock())
        self._flights: dict[str, _Generation] = {}
        self._stats = _Stats()
        # How long an instance waits for another instance's generation, and how long a whole
        # generation may take (app/video/deadlines.py; the socket layer waits the same).
        self.wait_timeout = lock_wait_seconds(settings)
        self.deadline = video_deadline_seconds(settings)
        # The render queue's front (app/video/dispatch.py), set by the lifespan when the app
        # runs one: the socket layer then queues its renders instead of calling this service.
        self.dispatcher: VideoDispatcher | None = None

    # --- helpers ------------------------------------------------------------------------------
    async def _entry(self, combo: Combination, *, count: bool = False) -> CacheEntry | None:
        """The cache entry, unless it points at one of our files that is gone."""
        entry = await self.cache.aget_entry(combo)
        if entry is None:
            return None
        sha = self.storage.sha_of_url(entry.video_url)
        if sha is not None and not await asyncio.to_thread(self.storage.exists, sha):
            # Our URL, but the file is gone (purged disk, another instance's disk): render again.
            if count:
                self._stats.repairs += 1
            logger.warning("cached video %s is missing from %s; generating it again", sha[:12],
                           self.storage.directory)
            return None
        return entry

    async def _promote(self, combo: Combination, url: str) -> None:
        await self.cache.aset(combo, url, permanent=True)
        self._stats.promotions += 1
        sha = self.storage.sha_of_url(url)
        if sha is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.storage.mark_permanent, sha)
        logger.info("promoted %s to permanent", url)

    async def _remember_failure(self, key: str, exc: BaseException) -> None:
        self._stats.failures += 1
        self._stats.last_error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, InvalidCardsError):  # bad input is refused, not remembered
            await self.negative.remember(key, self._stats.last_error)

    def _check_capacity(self, permanent: bool) -> None:
        """Refuse a new generation when too many are pending, instead of queueing forever.

        Winners (permanent) may fill `video_max_pending`; speculative and pre-generated ones
        only `video_max_pending_temporary`, so they never delay a winner for long.
        """
        pending = len(self._flights)
        limit = (self.settings.video_max_pending if permanent
                 else min(self.settings.video_max_pending,
                          self.settings.video_max_pending_temporary))
        if pending >= limit:
            self._stats.busy += 1
            raise VideoBusyError(f"video renderer busy: {pending} generations pending")

    def _forget(self, key: str, _task: asyncio.Task[str]) -> None:
        self._flights.pop(key, None)

    def _count_extension(self) -> None:
        self._stats.lock_extensions += 1

    # --- public API ---------------------------------------------------------------------------
    @overload
    async def get_or_create(self, combo: Combination, /, *, permanent: bool = False,
                            fresh: bool = False) -> str: ...

    @overload
    async def get_or_create(self, black_card: str, white_cards: Sequence[str],
                            permanent: bool = False, *, fresh: bool = False) -> str: ...

    async def get_or_create(self, black_card: Combination | str,
                            white_cards: Sequence[str] | None = None,
                            permanent: bool = False, *, fresh: bool = False) -> str:
        """Our URL of the video of this combination, generating it at most once.

        Takes a `Combination`, or `(black_card, white_cards)` (the spec's form), which becomes
        one here; bad cards raise `InvalidCardsError`. Returns or raises
        `VideoGenerationError` within `self.deadline` seconds (a flight that runs longer, say
        queued behind many renders, ends with `VideoDeadlineExceeded`). `fresh` skips the
        negative cache: a render job's retry (app/video/queue_worker.py) has its own backoff.
        """
        combo = combination_of(black_card, white_cards)
        key = combo.key
        entry = await self._entry(combo, count=True)
        if entry is not None:
            self._stats.hits += 1
            if permanent and not entry.permanent:
                await self._promote(combo, entry.video_url)
            return entry.video_url
        self._stats.misses += 1
        gen = self._flights.get(key)
        if gen is None and not fresh:
            await self.negative.check(key)
            gen = self._flights.get(key)  # another caller may have started meanwhile
        if gen is not None:
            self._stats.joined += 1
            gen.permanent = gen.permanent or permanent
        else:
            self._check_capacity(permanent)
            black, whites = combo.display()
            request = VideoRequest(black, whites, key, self.settings.video_resolution)
            gen = _Generation(request, combo, permanent, fresh=fresh)
            gen.task = asyncio.create_task(self._produce_in_time(gen),
                                           name=f"video-{key[6:18]}")
            self._flights[key] = gen
            gen.task.add_done_callback(functools.partial(self._forget, key))
        assert gen.task is not None
        url = await asyncio.shield(gen.task)
        if permanent and not gen.stored_permanent:
            await self._promote(combo, url)
            gen.stored_permanent = True
        return url

    async def record_play(self, black_card: Combination | str,
                          white_cards: Sequence[str] | None = None) -> None:
        """Count one play of this combination (feeds pre-generation). Never raises on bad input."""
        try:
            combo = combination_of(black_card, white_cards)
        except InvalidCardsError as exc:
            logger.debug("not counting an invalid combination: %s", exc)
            return
        await self.popularity.record(combo)

    async def record_winner(self, combo: Combination) -> Winner | None:
        """Put a winner whose video is ready into the public gallery (app/video/winners.py).

        Never raises: the gallery is a by-product of the game.
        """
        try:
            return await self.winners.record(combo)
        except Exception:
            logger.warning("could not record winner %s in the gallery", combo.key[6:18],
                           exc_info=True)
            return None

    # --- generation ---------------------------------------------------------------------------
    async def _produce_in_time(self, gen: _Generation) -> str:
        """`_produce` within `self.deadline`: past it the flight is cancelled, not awaited."""
        timeout = asyncio.timeout(self.deadline)
        try:
            async with timeout:
                return await self._produce(gen)
        except TimeoutError:
            if not timeout.expired():
                raise
            self._stats.deadline_exceeded += 1
            logger.warning("video %s took longer than %g s; given up", gen.request.sha256[:12],
                           self.deadline)
            raise VideoDeadlineExceeded(
                f"video {gen.request.sha256[:12]} was not ready within {self.deadline:g} s"
            ) from None

    async def _produce(self, gen: _Generation) -> str:
        """The flight's task: the cache again, then the lock across instances, then the render."""
        # A flight that finished while this one was being set up has already cached the video.
        entry = await self._entry(gen.combo)
        if entry is not None:
            return gen.adopt(entry)
        # ... and one that failed meanwhile has just recorded its failure.
        await gen.check_negative(self.negative)
        shared = self.cache.shared
        if not shared.available:  # memory only, or Redis is down: no other instance to wait on
            return await self._generate(gen)
        lock = RedisLock(shared, LOCK_PREFIX + gen.request.sha256,
                         self.settings.video_generation_lock_ttl)
        deadline = self.clock() + self.wait_timeout
        waited = False
        while True:
            try:
                acquired = await lock.acquire()
            except CacheBackendError as exc:
                logger.warning("generation lock unavailable (%s); generating without it", exc)
                return await self._generate(gen)
            if acquired:
                async with LockKeeper(lock, on_extend=self._count_extension):
                    # The previous holder may have published just before we took the lock.
                    entry = await self._entry(gen.combo)
                    return gen.adopt(entry) if entry is not None else await self._generate(gen)
            if not waited:
                waited = True
                self._stats.lock_waits += 1
                logger.info("video %s is being generated by another instance; waiting",
                            gen.request.sha256[:12])
            url = await self._wait_for_other(gen, lock, deadline)
            if url is not None:
                return url

    async def _wait_for_other(
        self, gen: _Generation, lock: RedisLock, deadline: float
    ) -> str | None:
        """Poll until the lock holder publishes (URL), fails (raise) or vanishes (None)."""
        delay = 0.05
        while True:
            entry = await self.cache.aget_entry(gen.combo)
            if entry is not None:
                return gen.adopt(entry)
            await gen.check_negative(self.negative)
            try:
                held = await lock.is_held()
            except CacheBackendError:
                held = False  # take over (or generate without the lock): no wait on a dead Redis
            if not held:
                return None  # the holder finished or died: look again, then try to take it
            if self.clock() + delay > deadline:
                raise GenerationWaitTimeout(
                    f"video {gen.request.sha256[:12]} is still being generated elsewhere"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    async def _generate(self, gen: _Generation) -> str:
        """Render, publish and cache one video (under the lock when Redis is there)."""
        storage, request = self.storage, gen.request
        temp = await asyncio.to_thread(storage.temp_path, request.sha256)
        started = self.clock()
        try:
            await self.provider.generate(request, temp)
            meta = VideoMeta(key=request.key, black_card=gen.combo.black,
                             white_cards=list(gen.combo.whites),
                             permanent=gen.permanent, created_at=utc_now_iso(),
                             provider=self.provider.name, resolution=request.resolution)
            await asyncio.to_thread(storage.publish, temp, meta)
        except VideoGenerationError as exc:
            await self._remember_failure(request.key, exc)
            raise
        except Exception as exc:
            await self._remember_failure(request.key, exc)
            logger.error("video generation crashed for %s", request.sha256[:12], exc_info=True)
            raise VideoGenerationError(f"video generation failed: {exc}") from exc
        finally:
            await asyncio.to_thread(storage.discard, temp)
        self._stats.generations += 1
        self._stats.render_seconds += self.clock() - started
        url = storage.url_for(request.sha256)
        permanent = gen.permanent  # a permanent caller may have joined during the render
        try:
            await self.cache.aset(gen.combo, url, permanent=permanent)
        except Exception:
            # The file is published; the next caller finds it through the same URL.
            logger.error("could not cache %s", url, exc_info=True)
        if permanent and not meta.permanent:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(storage.mark_permanent, request.sha256)
        gen.stored_permanent = permanent
        logger.info("generated %s (%s, %.2f s)", url, self.provider.name,
                    self.clock() - started)
        return url

    # --- life cycle and stats -----------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._flights)

    async def start(self) -> None:
        """Prepare storage and warm the render pool (from the lifespan)."""
        await asyncio.to_thread(self.storage.directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.storage.remove_stale_temps)
        starter = getattr(self.provider, "start", None)
        if starter is not None:
            await starter()

    async def aclose(self) -> None:
        tasks = [gen.task for gen in self._flights.values() if gen.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.provider.aclose()

    async def astats(self) -> dict[str, Any]:
        """`stats()` plus the render queue's (depths, ages, dead letters, workers)."""
        stats = self.stats()
        if self.dispatcher is not None:
            stats["queue"] = await self.dispatcher.stats()
        return stats

    def stats(self) -> dict[str, Any]:
        s = self._stats
        stats: dict[str, Any] = {
            "provider": self.provider.name,
            "generations": s.generations,
            "joined": s.joined,
            "lock_waits": s.lock_waits,
            "lock_extensions": s.lock_extensions,
            "failures": s.failures,
            "mean_render_seconds": round(s.render_seconds / s.generations, 4)
            if s.generations else None,
            "hits": s.hits,
            "misses": s.misses,
            "negative_hits": self.negative.hits,
            "promotions": s.promotions,
            "repairs": s.repairs,
            "in_flight": self.in_flight,
            "busy": s.busy,
            "deadline_exceeded": s.deadline_exceeded,
            "last_error": s.last_error,
        }
        for name in ("fallbacks", "retries", "cancelled_jobs"):
            value = getattr(self.provider, name, None)
            if isinstance(value, int):
                stats[f"provider_{name}"] = value
        return stats


_service: VideoService | None = None


def get_video_service() -> VideoService:
    """The process's service, built from `get_settings()` and the `video_cache` singleton."""
    global _service
    if _service is None:
        _service = VideoService(get_settings())
    return _service


def set_video_service(service: VideoService | None) -> None:
    """Replace the process singleton (tests, CLI)."""
    global _service
    _service = service


async def generate_video(combo: HasCards) -> str:
    """The spec's pre-generation helper: our URL of the combination's (temporary) video."""
    service = get_video_service()
    if isinstance(combo, Combination):
        return await service.get_or_create(combo, permanent=False)
    return await service.get_or_create(combo.black, combo.whites, permanent=False)
