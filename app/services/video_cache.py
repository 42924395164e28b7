"""The video cache: Redis first, memory as the fallback, behind one facade.

    from app.services.video_cache import video_cache
    video_cache.set("What's the secret to happiness?", ["Cats with opposable thumbs"],
                    "https://video.url/abc123.mp4", permanent=True)
    video_cache.get("What's the secret to happiness?", ["Cats with opposable thumbs"])

The sync API (`set`, `get`, `delete`, `get_many`, `get_stats`) is the one of the spec; each has
an async twin (`aset`, `aget`, ...) that the server uses so its event loop never waits on a
socket. Both only drive the plans of `app.cache.core`, where the policy lives.

The async twins also take a `Combination` (`app.core.cards`) in place of the two card
arguments, and use the key it carries instead of validating and hashing the cards again:

    combo = Combination(black, whites)          # validated, normalised and keyed once
    await video_cache.aset(combo, url, permanent=True)
    entry = await video_cache.aget_entry(combo)

Concurrent async calls share round trips: while one is in flight, the calls that arrive are
coalesced into the next MGET or pipeline (`app/cache/batching.py`, `CACHE_BATCH_MAX_KEYS`); a
lone call goes out at once.

Other layers reach the same Redis only through `shared` (typed commands, errors mapped once);
no raw client leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, overload

import redis
import redis.asyncio as aioredis

from app.cache.batching import Batcher
from app.cache.connection import make_async_client, make_sync_client
from app.cache.core import NEED_REDIS, CacheCore
from app.cache.entry import CacheEntry, validate_video_url
from app.cache.invalidation import InvalidationListener
from app.cache.keys import key_for
from app.cache.plans import run_async, run_sync
from app.cache.prober import ThreadProber, probe_forever
from app.cache.shared import SharedRedis
from app.core.cards import Combination
from app.core.config import Settings, get_settings

logger = logging.getLogger(__name__)


class HasCards(Protocol):
    """Anything with the cards of a combination, such as a `Combination`."""

    @property
    def black(self) -> str: ...
    @property
    def whites(self) -> Sequence[str]: ...


# What `get_many` takes per combination: a (black, whites) pair, or .black and .whites (a
# `Combination` gives its key as is).
CardsArg = tuple[str, Sequence[str]] | HasCards


def _combo_cards(combo: object) -> tuple[object, object]:
    if isinstance(combo, tuple) and len(combo) == 2:
        return combo[0], combo[1]
    try:
        return combo.black, combo.whites  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError("each combo must be a (black_card, white_cards) pair or have "
                        ".black and .whites") from None


def _combination_key(combo: object) -> str:
    """The key a `Combination` carries; the async API's one-argument form."""
    if type(combo) is Combination:
        return combo.key
    raise TypeError("pass a Combination alone, or black_card and white_cards "
                    f"(got {type(combo).__name__} without white cards)")


class VideoCache:
    def __init__(self, settings: Settings | None = None, *, read_only: bool = False) -> None:
        self._settings = settings
        self.read_only = read_only  # see CacheCore: never writes, never replays
        self._core: CacheCore | None = None
        self._lock = threading.RLock()
        self._started = False
        self._sync_client: redis.Redis | None = None
        self._async_client: aioredis.Redis | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._batcher: Batcher | None = None
        self._batcher_loop: asyncio.AbstractEventLoop | None = None
        self._listener: InvalidationListener | None = None
        self._thread_prober: ThreadProber | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._astart_lock = asyncio.Lock()
        self._shared: SharedRedis | None = None

    # --- life cycle ---------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def core(self) -> CacheCore:
        if self._core is None:
            with self._lock:
                if self._core is None:
                    core = CacheCore(self.settings, read_only=self.read_only)
                    if not self.read_only:  # a one-shot reader gives up instead of probing
                        core.on_outage = self._ensure_prober
                    self._core = core
        return self._core

    def configure(self, settings: Settings) -> None:
        """Use other settings from now on (tests, CLI). Drops clients and state."""
        self.close()
        self._settings = settings
        self._core = None

    def _start_background(self) -> None:
        core = self.core
        if not core.memory_only and not self.read_only:
            self._listener = self._listener or InvalidationListener(core)
            self._listener.start()
            if core.breaker.is_open:
                self._ensure_prober()

    def _ensure_prober(self) -> None:
        with self._lock:
            if self._probe_task is not None and not self._probe_task.done():
                return
            self._thread_prober = self._thread_prober or ThreadProber(self.core, self._sync)
            self._thread_prober.start()

    def _ensure_started(self) -> None:
        """Auto-detection on first use: connect, or fall back to memory."""
        with self._lock:
            if self._started:
                return
            run_sync(self.core.plan_connect(), self._sync)
            self._started = True
            self._start_background()

    async def astart(self) -> None:
        """Connect from the server's lifespan; the recovery probe runs as a task of this loop."""
        async with self._astart_lock:  # concurrent first calls start once
            if self._thread_prober is not None:
                await asyncio.to_thread(self._thread_prober.stop)
            task_alive = self._probe_task is not None and not self._probe_task.done()
            if not self.core.memory_only and not self.read_only and not task_alive:
                self._probe_task = asyncio.create_task(
                    probe_forever(self.core, self._async), name="video-cache-probe")
            if not self._started:
                await run_async(self.core.plan_connect(), self._async)
                self._started = True
            self._start_background()

    async def aclose(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None
        if self._batcher is not None and self._batcher_loop is asyncio.get_running_loop():
            await self._batcher.aclose()
        self._batcher = self._batcher_loop = None
        if self._async_client is not None:
            with contextlib.suppress(Exception):
                await self._async_client.aclose()
        self._async_client = None
        self._async_loop = None
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._thread_prober is not None:
            self._thread_prober.stop()
        if self._probe_task is not None and not self._probe_task.done():
            self._probe_task.cancel()
        self._probe_task = None
        if self._sync_client is not None:
            self._sync_client.close()
        self._sync_client = None
        self._async_client = None
        self._async_loop = None
        self._batcher = self._batcher_loop = None
        self._listener = None
        self._thread_prober = None
        self._started = False

    def _sync(self) -> redis.Redis:
        if self._sync_client is None:
            with self._lock:
                if self._sync_client is None:
                    self._sync_client = make_sync_client(self.settings)
        return self._sync_client

    def _async(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = make_async_client(self.settings)
            self._async_loop = loop
        return self._async_client

    def _batch(self) -> Batcher:
        """The batcher of the running loop (a batcher's queue and drain belong to one loop)."""
        loop = asyncio.get_running_loop()
        batcher = self._batcher
        if batcher is None or self._batcher_loop is not loop:
            batcher = self._batcher = Batcher(self._async, self.settings.cache_batch_max_keys,
                                              self._batch_blocked)
            self._batcher_loop = loop
        return batcher

    def _batch_blocked(self) -> str | None:
        core = self.core
        if core.redis_usable:
            return None
        return core.breaker.last_error or "Redis is not in use"

    @property
    def shared(self) -> SharedRedis:
        """Typed, error-mapped Redis commands for other layers' shared state (locks...)."""
        if self._shared is None:
            self._shared = SharedRedis(lambda: self.core, self._async)
        return self._shared

    def redis_reachable(self) -> bool:
        """Connect if needed; whether Redis serves the cache now (False for memory://)."""
        if not self._started:
            self._ensure_started()
        return self.core.redis_usable

    async def aredis_reachable(self) -> bool:
        if not self._started:
            await self.astart()
        return self.core.redis_usable

    def purge(self, *, temporary_only: bool) -> int:
        """Delete every entry in Redis (or only the temporary ones); returns how many.

        Raises `RedisUnavailable` when Redis cannot be reached: memory alone is no purge.
        """
        if not self._started:
            self._ensure_started()
        return run_sync(self.core.plan_purge(temporary_only), self._sync)

    # --- keys and input -----------------------------------------------------------------------
    @staticmethod
    def key_for(black_card: str, white_cards: Sequence[str]) -> str:
        return key_for(black_card, white_cards)

    @staticmethod
    def _new_entry(video_url: object, permanent: object) -> CacheEntry:
        if not isinstance(permanent, bool):
            raise TypeError(f"permanent must be a bool, not {type(permanent).__name__}")
        return CacheEntry.new(validate_video_url(video_url), permanent)

    def _keys(self, combos: Iterable[CardsArg]) -> list[str]:
        return [combo.key if type(combo) is Combination else key_for(*_combo_cards(combo))
                for combo in combos]

    # --- sync API (the spec's) ----------------------------------------------------------------
    def get_entry(self, black_card: str, white_cards: Sequence[str]) -> CacheEntry | None:
        if not self._started:
            self._ensure_started()
        key = key_for(black_card, white_cards)
        core = self.core
        local = core.answer_locally(key)
        if local is not NEED_REDIS:
            return local
        epoch = core.invalidation_epoch
        try:
            raw = self._sync().get(key)
        except Exception as exc:
            return core.failed_get(key, exc)
        return core.accept_get(key, raw, epoch)

    def get(self, black_card: str, white_cards: Sequence[str]) -> str | None:
        entry = self.get_entry(black_card, white_cards)
        return None if entry is None else entry.video_url

    def set(self, black_card: str, white_cards: Sequence[str], video_url: str,
            permanent: bool = False) -> None:
        key = key_for(black_card, white_cards)
        entry = self._new_entry(video_url, permanent)
        if not self._started:
            self._ensure_started()
        run_sync(self.core.plan_set(key, entry), self._sync)

    def delete(self, black_card: str, white_cards: Sequence[str]) -> bool:
        key = key_for(black_card, white_cards)
        if not self._started:
            self._ensure_started()
        return run_sync(self.core.plan_delete(key), self._sync)

    def get_many(self, combos: Iterable[CardsArg]) -> list[str | None]:
        keys = self._keys(combos)
        if not self._started:
            self._ensure_started()
        entries = run_sync(self.core.plan_get_many(keys), self._sync)
        return [None if entry is None else entry.video_url for entry in entries]

    def ttl(self, black_card: str, white_cards: Sequence[str]) -> float | None:
        key = key_for(black_card, white_cards)
        if not self._started:
            self._ensure_started()
        return run_sync(self.core.plan_ttl(key), self._sync)

    def get_stats(self) -> dict[str, Any]:
        if not self._started:
            self._ensure_started()
        total = run_sync(self.core.plan_count(), self._sync)
        return self.core.stats(total)

    # --- async twins --------------------------------------------------------------------------
    async def _aread(self, key: str) -> CacheEntry | None:
        core = self.core
        entry = core.answer_locally(key)
        if entry is not NEED_REDIS:
            return entry
        epoch = core.invalidation_epoch
        try:
            raw = await self._batch().get(key)
        except Exception as exc:
            return core.failed_get(key, exc)
        return core.accept_get(key, raw, epoch)

    async def aget_entry(self, black_card: str | Combination,
                         white_cards: Sequence[str] | None = None) -> CacheEntry | None:
        """The entry of `(black_card, white_cards)`, or of a `Combination` given alone."""
        key = (key_for(black_card, white_cards) if white_cards is not None
               else _combination_key(black_card))
        if not self._started:
            await self.astart()
        return await self._aread(key)

    async def aget(self, black_card: str | Combination,
                   white_cards: Sequence[str] | None = None) -> str | None:
        key = (key_for(black_card, white_cards) if white_cards is not None
               else _combination_key(black_card))
        if not self._started:
            await self.astart()
        entry = await self._aread(key)
        return entry.video_url if entry is not None else None

    @overload
    async def aset(self, combo: Combination, video_url: str, /, *,
                   permanent: bool = False) -> None: ...

    @overload
    async def aset(self, black_card: str, white_cards: Sequence[str], video_url: str,
                   permanent: bool = False) -> None: ...

    async def aset(self, black_card: str | Combination, white_cards: Sequence[str],
                   video_url: str | None = None, permanent: bool = False) -> None:
        """`aset(black, whites, url, permanent)`, or `aset(combo, url, permanent=...)`."""
        if video_url is None and isinstance(white_cards, str):
            key = _combination_key(black_card)
            video_url = white_cards
        else:
            key = key_for(black_card, white_cards)
        entry = self._new_entry(video_url, permanent)
        if not self._started:
            await self.astart()
        await run_async(self.core.plan_set(key, entry), self._async, self._batch())

    async def adelete(self, black_card: str | Combination,
                      white_cards: Sequence[str] | None = None) -> bool:
        key = (key_for(black_card, white_cards) if white_cards is not None
               else _combination_key(black_card))
        if not self._started:
            await self.astart()
        return await run_async(self.core.plan_delete(key), self._async, self._batch())

    async def aget_many(self, combos: Iterable[CardsArg]) -> list[str | None]:
        keys = self._keys(combos)
        if not self._started:
            await self.astart()
        entries = await run_async(self.core.plan_get_many(keys), self._async, self._batch())
        return [None if entry is None else entry.video_url for entry in entries]

    async def attl(self, black_card: str | Combination,
                   white_cards: Sequence[str] | None = None) -> float | None:
        key = (key_for(black_card, white_cards) if white_cards is not None
               else _combination_key(black_card))
        if not self._started:
            await self.astart()
        return await run_async(self.core.plan_ttl(key), self._async)

    async def aget_stats(self) -> dict[str, Any]:
        if not self._started:
            await self.astart()
        total = await run_async(self.core.plan_count(), self._async)
        return self.core.stats(total)


__all__ = ["VideoCache", "video_cache"]

video_cache = VideoCache()
