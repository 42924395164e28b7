"""The bounded in-process store."""

from __future__ import annotations

import time

import pytest

from app.cache.entry import CacheEntry
from app.cache.memory_store import MemoryStore


def entry(url: str, permanent: bool = False) -> CacheEntry:
    return CacheEntry.new(url, permanent)


def test_expired_entries_are_gone() -> None:
    store = MemoryStore(10)
    store.set("k", entry("/a.mp4"), time.time() - 1)
    assert store.get("k") is None
    assert len(store) == 0


def test_permanent_entries_never_expire() -> None:
    store = MemoryStore(10)
    store.set("k", entry("/a.mp4", permanent=True), time.time() - 1)
    assert store.get("k") == store.get("k") is not None
    assert store.ttl("k") == -1


def test_bound_evicts_temporary_before_permanent() -> None:
    store = MemoryStore(3)
    store.set("p1", entry("/p1", True), None)
    store.set("t1", entry("/t1"), time.time() + 60)
    store.set("p2", entry("/p2", True), None)
    store.set("t2", entry("/t2"), time.time() + 60)  # evicts t1, the oldest temporary
    assert store.get("t1") is None
    store.set("p3", entry("/p3", True), None)  # evicts t2, the last temporary
    assert store.get("t2") is None
    assert {k for k in store.live_keys()} == {"p1", "p2", "p3"}
    store.set("p4", entry("/p4", True), None)  # only permanent ones left: LRU of them
    assert store.get("p1") is None
    assert len(store) == 3
    assert store.evictions == 3


def test_lru_order_follows_reads() -> None:
    store = MemoryStore(2)
    store.set("a", entry("/a"), time.time() + 60)
    store.set("b", entry("/b"), time.time() + 60)
    store.get("a")
    store.set("c", entry("/c"), time.time() + 60)
    assert store.get("b") is None
    assert store.get("a") is not None


def test_stale_entries_are_not_fresh_hits() -> None:
    store = MemoryStore(5)
    store.set("a", entry("/a"), time.time() + 60)
    store.mark_stale("a")
    assert store.get("a", fresh_only=True) is None
    assert store.get("a") is not None
    store.set("a", entry("/a2"), time.time() + 60)
    assert store.get("a", fresh_only=True) is not None


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(0)
