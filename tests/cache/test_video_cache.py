"""One suite of cache behaviour, run against Redis and against memory."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from app.cache import keys
from app.core.cards import Combination
from app.services.video_cache import VideoCache
from tests.cache.conftest import CacheFactory

BLACK = "What's the secret to happiness?"
WHITES = ["Cats with opposable thumbs"]


def test_set_then_get(cache: VideoCache) -> None:
    assert cache.get(BLACK, WHITES) is None
    cache.set(BLACK, WHITES, "https://video.url/abc123.mp4", permanent=True)
    assert cache.get(BLACK, WHITES) == "https://video.url/abc123.mp4"
    entry = cache.get_entry(BLACK, WHITES)
    assert entry is not None and entry.permanent is True
    assert entry.created_at.endswith("+00:00")


def test_cards_are_normalised(cache: VideoCache) -> None:
    cache.set(" Caf\u00e9 _ ", ["x "], "/videos/a.mp4")
    assert cache.get("Cafe\u0301 _", ["x"]) == "/videos/a.mp4"
    assert cache.get("Café _", ["y"]) is None


def test_ttl_permanent_and_temporary(cache: VideoCache) -> None:
    cache.set("b1", ["w"], "/videos/1.mp4", permanent=True)
    cache.set("b2", ["w"], "/videos/2.mp4", permanent=False)
    assert cache.ttl("b1", ["w"]) == -1
    ttl = cache.ttl("b2", ["w"])
    assert ttl is not None and 86390 <= ttl <= 86400
    assert cache.ttl("absent", ["w"]) is None


def test_configured_ttl_is_honoured(cache_factory: CacheFactory, backend_url: str) -> None:
    cache = cache_factory(backend_url, cache_temporary_ttl=1)
    cache.set("short", ["lived"], "/videos/s.mp4")
    assert cache.get("short", ["lived"]) == "/videos/s.mp4"
    deadline = time.monotonic() + 5
    while cache.get("short", ["lived"]) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cache.get("short", ["lived"]) is None


def test_overwrite_and_delete(cache: VideoCache) -> None:
    cache.set(BLACK, WHITES, "/videos/old.mp4")
    cache.set(BLACK, WHITES, "/videos/new.mp4")
    assert cache.get(BLACK, WHITES) == "/videos/new.mp4"
    assert cache.delete(BLACK, WHITES) is True
    assert cache.get(BLACK, WHITES) is None
    assert cache.delete(BLACK, WHITES) is False


def test_get_many_keeps_order(cache: VideoCache) -> None:
    @dataclass
    class Combo:
        black: str
        whites: list[str]

    cache.set("one", ["a"], "/videos/1.mp4")
    cache.set("three", ["c", "d"], "/videos/3.mp4")
    combos = [Combo("one", ["a"]), ("two", ["b"]), Combo("three", ["c", "d"])]
    assert cache.get_many(combos) == ["/videos/1.mp4", None, "/videos/3.mp4"]
    assert cache.get_many([]) == []


def test_stats(cache: VideoCache, backend_url: str) -> None:
    cache.set("s", ["1"], "/videos/1.mp4")
    cache.set("s", ["2"], "/videos/2.mp4", permanent=True)
    cache.get("s", ["1"])
    cache.get("s", ["missing"])
    stats = cache.get_stats()
    assert stats["cache_type"] == ("memory" if backend_url == "memory://" else "redis")
    assert stats["total_entries"] == 2
    assert stats["sets"] == 2
    assert stats["hits"] == 1 and stats["misses"] == 1
    assert stats["hit_rate"] == 0.5
    assert stats["errors"] == 0
    json.dumps(stats)  # serialisable for /api/cache/stats


async def test_async_twins(cache: VideoCache) -> None:
    try:
        await _exercise_async_api(cache)
    finally:
        await cache.aclose()


async def _exercise_async_api(cache: VideoCache) -> None:
    await cache.aset(BLACK, WHITES, "/videos/async.mp4", permanent=True)
    assert await cache.aget(BLACK, WHITES) == "/videos/async.mp4"
    assert cache.get(BLACK, WHITES) == "/videos/async.mp4"
    assert await cache.attl(BLACK, WHITES) == -1
    assert await cache.aget_many([(BLACK, WHITES), ("x", ["y"])]) == ["/videos/async.mp4", None]
    stats = await cache.aget_stats()
    assert stats["total_entries"] == 1
    assert await cache.adelete(BLACK, WHITES) is True
    assert await cache.aget(BLACK, WHITES) is None


async def test_async_api_takes_a_combination_and_uses_its_key(
        cache: VideoCache, monkeypatch: pytest.MonkeyPatch) -> None:
    combo = Combination(" Caf\u00e9 _ ", ["x "])  # validated, normalised and keyed here, once

    def keyed_again(*args: object) -> str:
        raise AssertionError("the facade validated and hashed the cards again")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(keys, "_derive_key", keyed_again)
            patched.setattr(keys, "_cached_key", keyed_again)
            await cache.aset(combo, "/videos/c.mp4", permanent=True)
            assert await cache.aget(combo) == "/videos/c.mp4"
            entry = await cache.aget_entry(combo)
            assert entry is not None and entry.permanent
            assert await cache.attl(combo) == -1
            assert await cache.aget_many([combo, combo]) == ["/videos/c.mp4"] * 2
        # The same entry as the spec's two-argument forms see it, sync and async.
        assert cache.get("Cafe\u0301 _", ["x"]) == "/videos/c.mp4"
        assert await cache.aget("Café _", ["x"]) == "/videos/c.mp4"
        with monkeypatch.context() as patched:
            patched.setattr(keys, "_derive_key", keyed_again)
            patched.setattr(keys, "_cached_key", keyed_again)
            assert await cache.adelete(combo) is True
        assert cache.get("Café _", ["x"]) is None
    finally:
        await cache.aclose()


async def test_a_combination_is_passed_alone(cache: VideoCache) -> None:
    combo = Combination(BLACK, WHITES)
    try:
        with pytest.raises(TypeError, match="Combination alone"):
            await cache.aget(BLACK)
        with pytest.raises(TypeError, match="black_card must be a string"):
            await cache.aset(combo, WHITES, "/videos/a.mp4")  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="Combination alone"):
            await cache.aset(BLACK, "/videos/a.mp4")  # type: ignore[call-overload]
        assert (await cache.aget_stats())["sets"] == 0
    finally:
        await cache.aclose()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("", WHITES, "/videos/a.mp4"), ValueError),
        ((None, WHITES, "/videos/a.mp4"), TypeError),
        ((BLACK, [], "/videos/a.mp4"), ValueError),
        ((BLACK, "not a list", "/videos/a.mp4"), TypeError),
        ((BLACK, [""], "/videos/a.mp4"), ValueError),
        ((BLACK, [42], "/videos/a.mp4"), TypeError),
        ((BLACK, ["w"] * 11, "/videos/a.mp4"), ValueError),
        ((BLACK, ["w" * 1001], "/videos/a.mp4"), ValueError),
        ((BLACK, WHITES, "javascript:alert(1)"), ValueError),
        ((BLACK, WHITES, "data:video/mp4;base64,AAAA"), ValueError),
        ((BLACK, WHITES, "ftp://example.com/a.mp4"), ValueError),
        ((BLACK, WHITES, "//evil.example/a.mp4"), ValueError),
        ((BLACK, WHITES, "videos/relative.mp4"), ValueError),
        ((BLACK, WHITES, "https://x/" + "a" * 2048), ValueError),
        ((BLACK, WHITES, "/videos/a b.mp4"), ValueError),
        ((BLACK, WHITES, ""), ValueError),
        ((BLACK, WHITES, None), TypeError),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    cache: VideoCache, args: tuple[object, object, object], error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        cache.set(*args)  # type: ignore[arg-type]
    assert any(name in str(raised.value) for name in ("black_card", "white_cards", "video_url"))
    assert cache.get_stats()["total_entries"] == 0
    assert cache.get_stats()["sets"] == 0


def test_permanent_flag_must_be_bool(cache: VideoCache) -> None:
    with pytest.raises(TypeError, match="permanent"):
        cache.set(BLACK, WHITES, "/videos/a.mp4", permanent="yes")  # type: ignore[arg-type]
    assert cache.get(BLACK, WHITES) is None


def test_bad_combo_in_get_many(cache: VideoCache) -> None:
    with pytest.raises(TypeError, match="combo"):
        cache.get_many([42])


def test_a_read_only_cache_refuses_to_write(cache_factory: CacheFactory, redis_url: str) -> None:
    writer = cache_factory(redis_url)
    writer.set(BLACK, WHITES, "/videos/r.mp4", permanent=True)
    reader = VideoCache(writer.settings, read_only=True)
    try:
        assert reader.get(BLACK, WHITES) == "/videos/r.mp4"
        for write in (lambda: reader.set(BLACK, WHITES, "/videos/x.mp4"),
                      lambda: reader.delete(BLACK, WHITES),
                      lambda: reader.purge(temporary_only=True)):
            with pytest.raises(RuntimeError, match="read-only"):
                write()
        assert writer.get(BLACK, WHITES) == "/videos/r.mp4"
    finally:
        reader.close()
