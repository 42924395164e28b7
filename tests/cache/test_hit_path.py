"""The Redis hit path with the near cache off: a re-read of the same value is not decoded again,
and anything else (a new value, a corrupt one, a deleted key) is read as if it were."""

from __future__ import annotations

import pytest

from app.cache.entry import CacheEntry
from app.cache.keys import key_for
from tests.cache.conftest import CacheFactory
from tests.support.redis_server import RedisServer


class DecodeCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        decode = CacheEntry.decode

        def counting(raw: bytes | str) -> CacheEntry:
            self.calls += 1
            return decode(raw)

        monkeypatch.setattr(CacheEntry, "decode", counting)


def value(url: str, created_at: str = "2030-01-01T00:00:00.000000+00:00") -> bytes:
    return CacheEntry(url, created_at, True).encode()


async def test_a_re_read_of_the_same_value_is_not_decoded_again(
        cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    try:
        cache.set("hot", ["combo"], "/videos/hot.mp4", permanent=True)
        decodes = DecodeCounter(monkeypatch)
        assert cache.get("hot", ["combo"]) == "/videos/hot.mp4"  # decoded, then remembered
        assert decodes.calls == 1
        for _ in range(5):
            assert cache.get("hot", ["combo"]) == "/videos/hot.mp4"
            assert await cache.aget("hot", ["combo"]) == "/videos/hot.mp4"
        assert decodes.calls == 1
        stats = cache.get_stats()
        assert stats["hits"] == 11 and stats["near_hits"] == 0
    finally:
        await cache.aclose()


async def test_a_changed_value_is_decoded_and_served(
        cache_factory: CacheFactory, redis_url: str, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = cache_factory(redis_url, cache_near_enabled=False)
    key = key_for("shared", ["combo"])
    try:
        other = redis_server.client()  # another instance, unseen by this one (no tracking)
        other.set(key, value("/videos/v1.mp4"))
        assert cache.get("shared", ["combo"]) == "/videos/v1.mp4"
        assert cache.get("shared", ["combo"]) == "/videos/v1.mp4"
        decodes = DecodeCounter(monkeypatch)

        other.set(key, value("/videos/v2.mp4"))
        assert cache.get("shared", ["combo"]) == "/videos/v2.mp4"
        assert await cache.aget("shared", ["combo"]) == "/videos/v2.mp4"
        # Same video, another creation time: still a new value, and the entry says so.
        other.set(key, value("/videos/v2.mp4", "2031-01-01T00:00:00.000000+00:00"))
        entry = cache.get_entry("shared", ["combo"])
        assert entry is not None and entry.created_at.startswith("2031")
        assert decodes.calls == 2  # the re-read of v2 reused its entry

        other.set(key, b'{"video_url": "/videos/v3.mp4"}')  # corrupt: a miss, every time
        assert cache.get("shared", ["combo"]) is None
        assert await cache.aget("shared", ["combo"]) is None
        assert cache.core.counters.corrupt == 2

        other.set(key, value("/videos/v2.mp4"))  # the earlier value again
        assert cache.get("shared", ["combo"]) == "/videos/v2.mp4"
        other.delete(key)
        assert cache.get("shared", ["combo"]) is None
        assert cache.core.memory.get(key) is None  # a Redis miss drops the copy
    finally:
        await cache.aclose()


def test_a_copy_read_while_an_invalidation_races_is_not_reused_fresh(
        cache_factory: CacheFactory, redis_url: str) -> None:
    """The reuse of a held entry never makes a stale copy fresh: only a write does, and a write
    still checks the invalidation epoch."""
    cache = cache_factory(redis_url, cache_near_enabled=False)
    cache.set("race", ["combo"], "/videos/v1.mp4")
    key = key_for("race", ["combo"])
    core = cache.core
    assert cache.get("race", ["combo"]) == "/videos/v1.mp4"
    slot = core.memory.peek(key)
    assert slot is not None and slot.fresh and slot.raw is not None
    core.memory.mark_stale(key)
    epoch = core.invalidation_epoch
    core.invalidation_epoch += 1  # an invalidation began after our read was sent
    assert core.accept_get(key, slot.raw, epoch) == slot.entry
    assert core.memory.get(key, fresh_only=True) is None
    assert core.accept_get(key, slot.raw, core.invalidation_epoch) == slot.entry
    assert core.memory.get(key, fresh_only=True) == slot.entry
