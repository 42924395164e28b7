"""Bounded in-process store: near cache while Redis is up, fallback while it is down.

Entries honour their absolute expiry. When full, the least recently used temporary entry goes
first; permanent entries are evicted only when no temporary entry is left. Entries are marked
stale (not deleted) when another writer invalidates them: a stale entry is never served as a
near-cache hit, but is still better than nothing during an outage. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from app.cache.entry import CacheEntry


@dataclass(slots=True)
class Slot:
    entry: CacheEntry
    expires_at: float | None  # epoch seconds; None = permanent
    fresh: bool = True
    # The Redis value `entry` was decoded from, when known: a re-read of the same bytes
    # reuses `entry` instead of decoding again. Invariant: None or decode(raw) == entry.
    raw: bytes | str | None = None


class MemoryStore:
    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._temporary: OrderedDict[str, Slot] = OrderedDict()
        self._permanent: OrderedDict[str, Slot] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._temporary) + len(self._permanent)

    def get_slot(self, key: str, fresh_only: bool = False) -> Slot | None:
        with self._lock:
            table = self._permanent
            slot = table.get(key)
            if slot is None:
                table = self._temporary
                slot = table.get(key)
                if slot is None:
                    return None
                if slot.expires_at is not None and slot.expires_at <= time.time():
                    del table[key]
                    return None
            if fresh_only and not slot.fresh:
                return None
            table.move_to_end(key)
            return slot

    def get_fresh(self, key: str) -> CacheEntry | None:
        """A fresh, live entry: the near-cache hit path, without taking the lock.

        Each dict operation is atomic under the GIL; a concurrent delete only costs the LRU
        bump (KeyError), never a wrong answer.
        """
        slot = self._permanent.get(key) or self._temporary.get(key)
        if slot is None or not slot.fresh:
            return None
        if slot.expires_at is not None and slot.expires_at <= time.time():
            return None
        try:
            (self._permanent if slot.expires_at is None else self._temporary).move_to_end(key)
        except KeyError:
            pass
        return slot.entry

    def get(self, key: str, fresh_only: bool = False) -> CacheEntry | None:
        slot = self.get_slot(key, fresh_only)
        return None if slot is None else slot.entry

    def set(self, key: str, entry: CacheEntry, expires_at: float | None) -> None:
        slot = Slot(entry, None if entry.permanent else expires_at)
        with self._lock:
            self._temporary.pop(key, None)
            self._permanent.pop(key, None)
            (self._permanent if entry.permanent else self._temporary)[key] = slot
            self._evict_overflow()

    def peek(self, key: str) -> Slot | None:
        """The slot of `key`, live or not, without the lock or an LRU bump (the Redis hit path
        reads `entry`, `raw` and `fresh`, which a reader may trust: see `get_fresh`)."""
        return self._permanent.get(key) or self._temporary.get(key)

    def set_copy(self, key: str, entry: CacheEntry, temporary_expiry: float,
                 raw: bytes | str | None = None) -> None:
        """`set_many` for one copy read from Redis (the hot path of a Redis hit); `raw` is the
        value it was decoded from."""
        if entry.permanent:
            slot, table, other = Slot(entry, None, True, raw), self._permanent, self._temporary
        else:
            slot, table, other = (Slot(entry, temporary_expiry, True, raw), self._temporary,
                                  self._permanent)
        with self._lock:
            if other:
                other.pop(key, None)
            table[key] = slot
            table.move_to_end(key)
            self._evict_overflow()

    def set_many(self, items: list[tuple[str, CacheEntry]], temporary_expiry: float) -> None:
        """Store copies read from Redis, under one lock; temporary ones expire at the given time."""
        with self._lock:
            for key, entry in items:
                self._temporary.pop(key, None)
                self._permanent.pop(key, None)
                if entry.permanent:
                    self._permanent[key] = Slot(entry, None)
                else:
                    self._temporary[key] = Slot(entry, temporary_expiry)
            self._evict_overflow()

    def _evict_overflow(self) -> None:
        """Drop LRU entries past the bound, temporary ones first (call with the lock held)."""
        while len(self._temporary) + len(self._permanent) > self.max_entries:
            victim = self._temporary if self._temporary else self._permanent
            victim.popitem(last=False)
            self.evictions += 1

    def delete(self, key: str) -> bool:
        with self._lock:
            found = self._temporary.pop(key, None) or self._permanent.pop(key, None)
            return found is not None

    def mark_stale(self, key: str) -> None:
        with self._lock:
            slot = self._permanent.get(key) or self._temporary.get(key)
            if slot is not None:
                slot.fresh = False

    def mark_all_stale(self) -> None:
        with self._lock:
            for table in (self._temporary, self._permanent):
                for slot in table.values():
                    slot.fresh = False

    def clear(self) -> None:
        with self._lock:
            self._temporary.clear()
            self._permanent.clear()

    def ttl(self, key: str) -> float | None:
        """Seconds left, -1 for permanent, None when absent (like `redis-cli TTL`)."""
        slot = self.get_slot(key)
        if slot is None:
            return None
        if slot.expires_at is None:
            return -1
        return max(0.0, slot.expires_at - time.time())

    def live_keys(self) -> Iterator[str]:
        now = time.time()
        with self._lock:
            items = list(self._permanent.items()) + list(self._temporary.items())
        for key, slot in items:
            if slot.expires_at is None or slot.expires_at > now:
                yield key

    def count_live(self) -> int:
        return sum(1 for _ in self.live_keys())
