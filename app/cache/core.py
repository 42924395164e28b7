"""The cache policy, written once above the two stores: near cache, fallback, breaker, replay.

Every method that may talk to Redis is a plan (see `plans.py`); the sync and the async facade
only drive them. Nothing here does I/O except the local journal.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from app.cache.breaker import CircuitBreaker
from app.cache.connection import is_memory_url, mask_url, redis_target
from app.cache.entry import CacheEntry, CorruptEntryError, expiry_for, utc_now_iso
from app.cache.errors import (
    CacheBackendError,
    RedisBusy,
    RedisUnavailable,
    WrongTypeError,
    map_backend_error,
)
from app.cache.journal import Claim, Journal, JournalRecord
from app.cache.memory_store import MemoryStore
from app.cache.plans import (
    Delete,
    Eval,
    LocalCall,
    MGet,
    Ping,
    Plan,
    RedisStep,
    Scan,
    Set,
    Ttl,
)
from app.cache.replay import REPLAY_SCRIPT, replay_arguments
from app.cache.replication import ReplicaGuard
from app.cache.stats import CacheCounters
from app.core.cards import KEY_PREFIX
from app.core.config import Settings

logger = logging.getLogger("app.services.video_cache")

PROBE_KEY = "punchline:probe"
T = TypeVar("T")


class NeedRedis(enum.Enum):
    NEED_REDIS = "need-redis"


NEED_REDIS = NeedRedis.NEED_REDIS
MAX_CORRUPT_KEYS_LOGGED = 10_000


class CacheCore:
    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        # A read-only core (the CLI's stats, get, doctor) never writes to Redis or the journal,
        # and never replays: reading must not change what another process left behind.
        self.read_only = read_only
        self.memory_only = is_memory_url(settings.redis_url)
        self.memory = MemoryStore(settings.cache_memory_max_entries)
        self.breaker = CircuitBreaker(settings.cache_probe_base, settings.cache_probe_max_interval)
        self.target = redis_target(settings)
        self.journal = Journal(settings.journal_path, settings.cache_journal_fsync, self.target)
        self.counters = CacheCounters()
        self.near_live = False  # set by the invalidation listener while tracking is on
        self.invalidation_epoch = 0
        self._corrupt_logged: set[str] = set()
        self.pending_writes = 0  # journaled writes not yet replayed (lines, approximate)
        self.journal_errors = 0
        self._busy_logged_at = -1e9
        self.on_outage: Callable[[], None] | None = None  # e.g. start a recovery probe
        # Called (from the probe's thread or task) when Redis is back, e.g. wake the healer.
        self.on_recover: list[Callable[[], None]] = []
        # Permanent writes wait for a replica (WAIT); see replication.py.
        self.replicas = ReplicaGuard(settings, on_hold=lambda: self.on_outage and self.on_outage())

    # --- state --------------------------------------------------------------------------------
    @property
    def redis_usable(self) -> bool:
        return not self.memory_only and not self.breaker.is_open

    @property
    def cache_type(self) -> str:
        return "redis" if self.redis_usable else "memory"

    @property
    def near_active(self) -> bool:
        return self.near_live and self.settings.cache_near_enabled

    def near_lookup(self, key: str) -> CacheEntry | None:
        """A fresh near-cache entry, served without asking Redis."""
        if not (self.near_live and self.settings.cache_near_enabled):
            return None
        entry = self.memory.get_fresh(key)
        if entry is not None:
            self.counters.near_hits += 1
            self.counters.hits += 1
        return entry

    def memory_lookup(self, key: str) -> CacheEntry | None:
        """Serve a read from memory because Redis is down or not configured."""
        if not self.memory_only:
            self.counters.fallbacks += 1
        entry = self.memory.get(key)
        if entry is not None and not entry.permanent and self._outlived(entry):
            self.memory.delete(key)
            entry = None
        return self._count(entry)

    def _outlived(self, entry: CacheEntry) -> bool:
        """A temporary entry copied from Redis whose Redis TTL has run out (checked lazily:
        memory keeps Redis copies for a full TTL from the read, which tracking cuts short)."""
        try:
            created = datetime.fromisoformat(entry.created_at).timestamp()
        except ValueError:
            return False
        return created + self.settings.cache_temporary_ttl <= time.time()

    def _count(self, entry: CacheEntry | None) -> CacheEntry | None:
        if entry is None:
            self.counters.misses += 1
        else:
            self.counters.hits += 1
        return entry

    def record_failure(self, exc: CacheBackendError) -> None:
        self.counters.errors += 1
        if isinstance(exc, RedisBusy):
            now = time.monotonic()
            if now - self._busy_logged_at > 60:  # at most one line a minute
                self._busy_logged_at = now
                logger.warning("Redis connection pool exhausted (REDIS_MAX_CONNECTIONS=%d): "
                               "serving calls from memory meanwhile",
                               self.settings.redis_max_connections)
            if self.on_outage is not None:  # a journaled write needs a replayer
                self.on_outage()
            return
        if self.breaker.record_failure(str(exc)):
            self.counters.outages += 1
            self.near_live = False
            logger.warning("⚠️  Redis connection failed: %s", exc)
            logger.warning("⚠️  Falling back to in-memory cache")
            if self.on_outage is not None:
                self.on_outage()

    def _report_corrupt(self, key: str, reason: str) -> None:
        self.counters.corrupt += 1
        if key not in self._corrupt_logged and len(self._corrupt_logged) < MAX_CORRUPT_KEYS_LOGGED:
            self._corrupt_logged.add(key)
            logger.warning("Ignoring corrupt cache entry %s: %s", key, reason)

    def _remember(self, items: list[tuple[str, CacheEntry]], now: float, epoch: int) -> None:
        """Keep Redis values in memory; stale at once if an invalidation raced with them."""
        self.memory.set_many(items, now + self.settings.cache_temporary_ttl)
        # The listener bumps the epoch before it marks keys stale, so checking after the
        # write catches an invalidation that arrived while we were reading.
        if epoch != self.invalidation_epoch:
            for key, _ in items:
                self.memory.mark_stale(key)

    # --- the journal: local disk work, run by the drivers as LocalCalls -------------------------
    def _record(self, key: str, entry: CacheEntry | None, expires: float | None,
                at: str) -> JournalRecord:
        if self.read_only:
            raise RuntimeError("a read-only cache does not write")
        return JournalRecord(key, entry, expires, at, self.target)

    def _journal_append(self, record: JournalRecord) -> bool:
        try:
            self.journal.append(record)
        except OSError as exc:
            self._journal_failed("append to", exc)
            return False
        self.pending_writes += 1
        return True

    def _journal_failed(self, action: str, exc: OSError) -> None:
        self.journal_errors += 1
        if self.journal_errors == 1 or self.journal_errors % 1000 == 0:
            logger.error("Cannot %s the cache journal %s: %s (%d errors); writes made during "
                         "this outage live in memory only", action, self.journal.path, exc,
                         self.journal_errors)

    def _journal_claim(self) -> Claim | None:
        try:
            return self.journal.claim() if self.journal.has_pending() else None
        except OSError as exc:
            self._journal_failed("claim", exc)
            return None

    def _journal_release(self, claim: Claim) -> None:
        try:
            self.journal.release(claim)
        except OSError as exc:
            self._journal_failed("clean up", exc)
        self.pending_writes = max(0, self.pending_writes - claim.lines)

    def restore_journal(self) -> None:
        """After a restart during an outage, make journaled writes readable again."""
        try:
            records = self.journal.pending()
        except OSError as exc:
            self._journal_failed("read", exc)
            return
        for record in records:
            if record.entry is None:
                self.memory.delete(record.key)
            else:
                self.memory.set(record.key, record.entry, record.expires_at)
        self.pending_writes = len(records)

    # --- plans --------------------------------------------------------------------------------
    def plan_connect(self) -> Plan[bool]:
        """Start-up: ping Redis and log the outcome with the spec's lines."""
        if not self.memory_only:
            yield from LocalCall(self.restore_journal)
        if self.memory_only:
            logger.info("REDIS_URL is %s: using the in-memory cache only",
                        mask_url(self.settings.redis_url))
            return False
        try:
            yield from Ping()
        except CacheBackendError as exc:
            self.record_failure(exc)
            return False
        if self.breaker.is_open:  # a reconnect (close() and start again)
            self.breaker.probe_succeeded()
        logger.info("✅ Connected to Redis for video caching")
        logger.info("Redis at %s", mask_url(self.settings.redis_url))
        try:  # writes journaled by an earlier run, during an outage
            replayed, kept = yield from self._plan_replay()
        except CacheBackendError as exc:
            self.record_failure(exc)
            return False
        if replayed or kept:
            logger.info("Replayed %d journaled writes (kept %d newer values)", replayed, kept)
        return True

    def answer_locally(self, key: str) -> CacheEntry | None | NeedRedis:
        """The answer when memory can give it (near hit, outage, no Redis), else NEED_REDIS."""
        entry = self.near_lookup(key)
        if entry is not None:
            return entry
        if not self.redis_usable:
            return self.memory_lookup(key)
        return NEED_REDIS

    # The single-key read is the hottest path, so it is not a plan: the facade calls
    # `answer_locally`, then `client.get(key)`, then `accept_get` or `failed_get`.
    def accept_get(self, key: str, raw: bytes | str | None, epoch: int) -> CacheEntry | None:
        if raw is None:
            self.memory.delete(key)
            return self._count(self.replicas.held_entry(key))
        # A hot key re-read from Redis is usually held already, as these very bytes: reuse the
        # entry decoded from them (the JSON decode is most of this method's cost), and when it
        # is fresh, skip the locked write too.
        slot = self.memory.peek(key)
        if slot is not None and slot.raw == raw:
            entry, held = slot.entry, slot.fresh
        else:
            try:
                entry = CacheEntry.decode(raw)
            except CorruptEntryError as exc:
                self._report_corrupt(key, str(exc))
                self.counters.misses += 1
                return None
            held = False
            if slot is not None and slot.fresh and slot.entry == entry:
                held, slot.raw = True, raw  # decode(raw) == slot.entry: reuse it next time
        self.counters.hits += 1
        # Skipping a write is always safe (the copy at worst stays stale); a write is made
        # only if no invalidation began since the read, and checked again after it.
        if not held and epoch == self.invalidation_epoch:
            self.memory.set_copy(key, entry, time.time() + self.settings.cache_temporary_ttl,
                                 raw)
            if epoch != self.invalidation_epoch:  # see _remember
                self.memory.mark_stale(key)
        return entry

    def failed_get(self, key: str, exc: Exception) -> CacheEntry | None:
        """A Redis GET raised `exc`: fall back, or re-raise when it is a bug of ours."""
        mapped = map_backend_error(exc)
        if mapped is None:
            raise exc
        if isinstance(mapped, WrongTypeError):
            self._report_corrupt(key, "the key holds another Redis type")
            return self._count(None)
        self.record_failure(mapped)
        return self.memory_lookup(key)

    def plan_get_many(self, keys: list[str]) -> Plan[list[CacheEntry | None]]:
        results: list[CacheEntry | None]
        if self.near_active:
            results = [self.near_lookup(key) for key in keys]
            missing = [i for i, entry in enumerate(results) if entry is None]
        else:
            results, missing = [None] * len(keys), list(range(len(keys)))
        if not missing:
            return results
        if not self.redis_usable:
            for i in missing:
                results[i] = self.memory_lookup(keys[i])
            return results
        epoch = self.invalidation_epoch
        try:
            raws = yield from MGet([keys[i] for i in missing])
        except CacheBackendError as exc:
            self.record_failure(exc)
            for i in missing:
                results[i] = self.memory_lookup(keys[i])
            return results
        fetched: list[tuple[str, CacheEntry]] = []
        decode = CacheEntry.decode
        for i, raw in zip(missing, raws, strict=True):
            if raw is None:
                held = self.replicas.held_entry(keys[i])  # acknowledged, not yet replicated
                if held is not None:
                    results[i] = held
                    fetched.append((keys[i], held))
                continue
            key = keys[i]
            try:
                entry = results[i] = decode(raw)
            except CorruptEntryError as exc:
                self._report_corrupt(key, str(exc))
            else:
                fetched.append((key, entry))
        self.counters.hits += len(fetched)
        self.counters.misses += len(missing) - len(fetched)
        if fetched and epoch == self.invalidation_epoch:
            self._remember(fetched, time.time(), epoch)
        return results

    def plan_set(self, key: str, entry: CacheEntry) -> Plan[None]:
        if self.read_only:
            raise RuntimeError("a read-only cache does not write")
        ttl = self.settings.cache_temporary_ttl
        now = time.time()
        expires = expiry_for(entry, ttl, now)
        if self.redis_usable:
            epoch = self.invalidation_epoch
            try:
                yield from self.replicas.plan_set(key, entry,
                                                  None if entry.permanent else ttl * 1000)
            except CacheBackendError as exc:
                self.record_failure(exc)
            else:
                self.counters.sets += 1
                self.memory.set(key, entry, expires)
                if epoch != self.invalidation_epoch:
                    self.memory.mark_stale(key)
                return None
        self.counters.sets += 1
        if not self.memory_only:
            self.counters.fallbacks += 1
            yield from LocalCall(self._journal_append,
                                 (self._record(key, entry, expires, entry.created_at),))
        self.memory.set(key, entry, expires)
        return None

    def plan_delete(self, key: str) -> Plan[bool]:
        if self.read_only:
            raise RuntimeError("a read-only cache does not write")
        found_in_memory = self.memory.delete(key)
        self.replicas.forget(key)
        self.counters.deletes += 1
        if self.redis_usable:
            try:
                removed = yield from Delete(key)
            except CacheBackendError as exc:
                self.record_failure(exc)
            else:
                return bool(removed) or found_in_memory
        if not self.memory_only:
            yield from LocalCall(self._journal_append,
                                 (self._record(key, None, None, utc_now_iso()),))
        return found_in_memory

    def plan_ttl(self, key: str) -> Plan[float | None]:
        """Seconds left, -1 when permanent, None when absent: like `redis-cli TTL`."""
        if self.redis_usable:
            try:
                ttl = yield from Ttl(key)
            except CacheBackendError as exc:
                self.record_failure(exc)
            else:
                return None if ttl == -2 else float(ttl)
        return self.memory.ttl(key)

    def plan_count(self) -> Plan[int]:
        """Live `video:*` entries in the active store (a SCAN, not DBSIZE)."""
        if self.redis_usable:
            total, cursor = 0, 0
            try:
                while True:
                    cursor, batch = yield from Scan(cursor, KEY_PREFIX + "*")
                    total += len(batch)
                    if cursor == 0:
                        return total
            except CacheBackendError as exc:
                self.record_failure(exc)
        return self.memory.count_live()

    def plan_purge(self, temporary_only: bool) -> Plan[int]:
        """Delete every `video:*` entry in Redis (only those with a TTL when `temporary_only`).

        Raises RedisUnavailable when Redis is not in use: a purge of memory alone would lie.
        """
        if self.read_only:
            raise RuntimeError("a read-only cache does not write")
        if not self.redis_usable:
            raise RedisUnavailable(self.breaker.last_error or "Redis is not configured")
        if not temporary_only:
            self.replicas.forget()
        deleted, cursor = 0, 0
        while True:
            cursor, batch = yield from Scan(cursor, KEY_PREFIX + "*")
            for raw in batch:
                key = raw.decode() if isinstance(raw, bytes) else raw
                if temporary_only and (yield from Ttl(key)) < 0:
                    continue
                deleted += yield from Delete(key)
                self.memory.delete(key)
            if cursor == 0:
                return deleted

    def plan_shared(self, step: RedisStep[T]) -> Plan[T]:
        """One command on another layer's shared state (locks, popularity, negative cache).

        Raises RedisUnavailable at once while the breaker is open; an outage it meets opens
        the breaker like any cache call.
        """
        if not self.redis_usable:
            raise RedisUnavailable(self.breaker.last_error or "Redis is not in use")
        try:
            return (yield from step)
        except (RedisUnavailable, RedisBusy) as exc:
            self.record_failure(exc)
            raise

    def plan_recover(self) -> Plan[bool]:
        """One probe: check Redis accepts a write, replay the journal, close the breaker."""
        try:
            if self.read_only:
                yield from Ping()
            else:
                yield from Set(PROBE_KEY, utc_now_iso(), px=10_000)
            replayed, kept = yield from self._plan_replay()
        except CacheBackendError as exc:
            self.breaker.probe_failed(str(exc))
            return False
        downtime = self.breaker.probe_succeeded()
        self.counters.reconnects += 1
        # Invalidations may have been missed: nothing in memory is fresh any more.
        self.memory.mark_all_stale()
        self.invalidation_epoch += 1
        logger.info("✅ Reconnected to Redis for video caching after %.1fs "
                    "(replayed %d writes, kept %d newer values)", downtime, replayed, kept)
        for callback in self.on_recover:
            callback()
        try:  # writes that raced with the breaker closing
            yield from self._plan_replay()
        except CacheBackendError as exc:
            self.record_failure(exc)
        return True

    def plan_replay_pending(self) -> Plan[None]:
        """While connected, replay anything a racing writer left in the journal."""
        if self.redis_usable and self.pending_writes_on_disk():
            try:
                yield from self._plan_replay()
            except CacheBackendError as exc:
                self.record_failure(exc)

    def pending_writes_on_disk(self) -> bool:
        try:
            return self.journal.has_pending()
        except OSError:
            return False

    def _plan_replay(self) -> Plan[tuple[int, int]]:
        if self.read_only:
            return 0, 0
        claim = yield from LocalCall(self._journal_claim)
        if claim is None:
            return 0, 0
        written = kept = 0
        for record in claim.records:
            args = replay_arguments(record)
            if args is None:
                continue
            result = yield from Eval(REPLAY_SCRIPT, (record.key,), args)
            if result == 1:
                written += 1
                if record.entry is not None and record.entry.permanent:
                    self.replicas.hold_replayed(record.key, record.entry)
            else:
                kept += 1
        yield from LocalCall(self._journal_release, (claim,))
        self.counters.replayed += written
        self.counters.replay_kept_newer += kept
        return written, kept

    # --- stats ---------------------------------------------------------------------------------
    def stats(self, total_entries: int) -> dict[str, Any]:
        return {
            "cache_type": self.cache_type,
            "total_entries": total_entries,
            **self.counters.as_dict(),
            "memory_entries": len(self.memory),
            "memory_max_entries": self.memory.max_entries,
            "memory_evictions": self.memory.evictions,
            "near_cache_enabled": self.settings.cache_near_enabled,
            "near_cache_active": self.near_live,
            "redis_configured": not self.memory_only,
            "redis_connected": self.redis_usable,
            "redis_url": mask_url(self.settings.redis_url),
            "degraded_since": self.breaker.degraded_since,
            "pending_replay": self.pending_writes,
            "journal_errors": self.journal_errors,
            "last_error": self.breaker.last_error,
        }
