"""get_or_create: hits, single flight, the Redis lock, promotion, the negative cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from app.cache import keys
from app.core import cards
from app.core.cards import MAX_BLACK_CHARS, MAX_WHITE_CARDS, Combination
from app.video.errors import (
    GenerationWaitTimeout,
    InvalidCardsError,
    RecentFailureError,
    RenderError,
    VideoBusyError,
    VideoDeadlineExceeded,
    VideoGenerationError,
)
from app.video.local import LocalRenderer
from app.video.locks import LOCK_PREFIX
from app.video.service import FAILED_PREFIX, VideoService
from tests.support.redis_server import RedisServer, free_port
from tests.video.conftest import CountingProvider, FailingProvider, ServiceFactory, video_settings

BLACK = "What's the secret to happiness? _."
WHITES = ["Cats with opposable thumbs."]


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def counting(service_factory: ServiceFactory, tmp_path: Path, redis_url: str = "memory://",
             **overrides: object) -> tuple[VideoService, CountingProvider]:
    settings = video_settings(tmp_path, redis_url, **overrides)
    provider = CountingProvider(LocalRenderer(settings))
    return service_factory(settings=settings, provider=provider), provider


async def test_fifty_concurrent_callers_make_one_render(
        service_factory: ServiceFactory, tmp_path: Path, backend_url: str) -> None:
    service, provider = counting(service_factory, tmp_path, backend_url)
    urls = await asyncio.gather(*(service.get_or_create(BLACK, WHITES) for _ in range(50)))
    assert provider.calls == 1
    assert len(set(urls)) == 1
    url = urls[0]
    sha = service.cache.key_for(BLACK, WHITES).removeprefix("video:")
    assert url == f"/videos/{sha}.mp4"
    assert service.storage.exists(sha)
    stats = service.stats()
    assert stats["generations"] == 1
    assert stats["joined"] == 49
    assert stats["failures"] == 0
    assert stats["mean_render_seconds"] > 0
    entry = await service.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.video_url == url and entry.permanent is False
    # a hit afterwards returns at once, without rendering
    assert await service.get_or_create(BLACK, WHITES) == url
    assert provider.calls == 1
    assert service.stats()["hits"] == 1


async def test_a_permanent_joiner_makes_the_entry_permanent(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    calls = [service.get_or_create(BLACK, WHITES, permanent=(i == 5)) for i in range(10)]
    await asyncio.gather(*calls)
    entry = await service.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.permanent
    sidecar = service.storage.read_meta(entry.video_url.split("/")[-1][:-4])
    assert sidecar is not None and sidecar.permanent
    assert provider.calls == 1


async def test_winning_temporary_combination_is_promoted_without_rendering(
        service_factory: ServiceFactory, tmp_path: Path, backend_url: str) -> None:
    service, provider = counting(service_factory, tmp_path, backend_url)
    url = await service.get_or_create(BLACK, WHITES, permanent=False)
    assert await service.get_or_create(BLACK, WHITES, permanent=True) == url
    assert provider.calls == 1
    assert service.stats()["promotions"] == 1
    entry = await service.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.permanent and entry.video_url == url
    if backend_url.startswith("redis"):
        assert await service.cache.attl(BLACK, WHITES) == -1  # no TTL any more
    sidecar = service.storage.read_meta(url.split("/")[-1][:-4])
    assert sidecar is not None and sidecar.permanent
    # asking for a temporary video never demotes a permanent one
    await service.get_or_create(BLACK, WHITES, permanent=False)
    entry = await service.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.permanent


async def test_failure_is_not_cached_and_is_remembered_briefly(
        service_factory: ServiceFactory, backend_url: str) -> None:
    provider = FailingProvider()
    service = service_factory(backend_url, provider=provider, video_negative_ttl=30)
    results = await asyncio.gather(*(service.get_or_create(BLACK, WHITES) for _ in range(5)),
                                   return_exceptions=True)
    # callers that joined the flight share its error; later ones hit the negative cache
    assert isinstance(results[0], RenderError)
    assert all(isinstance(r, RenderError | RecentFailureError) for r in results)
    assert provider.calls == 1
    assert await service.cache.aget_entry(BLACK, WHITES) is None
    with pytest.raises(RecentFailureError) as caught:
        await service.get_or_create(BLACK, WHITES)
    assert 0 < caught.value.retry_after <= 30
    assert isinstance(caught.value, VideoGenerationError)
    assert provider.calls == 1
    stats = service.stats()
    assert stats["failures"] == 1
    assert stats["negative_hits"] >= 1
    assert "broken today" in stats["last_error"]
    assert list(service.storage.directory.glob("*")) == []  # no temp file left behind


async def test_negative_cache_expires(service_factory: ServiceFactory, tmp_path: Path) -> None:
    now = [1000.0]
    settings = video_settings(tmp_path, video_negative_ttl=5)
    provider = FailingProvider()
    service = service_factory(settings=settings, provider=provider)
    service.clock = lambda: now[0]
    with pytest.raises(RenderError):
        await service.get_or_create(BLACK, WHITES)
    with pytest.raises(RecentFailureError):
        await service.get_or_create(BLACK, WHITES)
    now[0] += 6
    with pytest.raises(RenderError):
        await service.get_or_create(BLACK, WHITES)
    assert provider.calls == 2


async def test_negative_ttl_zero_disables_it(service_factory: ServiceFactory) -> None:
    provider = FailingProvider()
    service = service_factory(provider=provider, video_negative_ttl=0)
    for _ in range(3):
        with pytest.raises(RenderError):
            await service.get_or_create(BLACK, WHITES)
    assert provider.calls == 3


async def test_negative_cache_is_shared_through_redis(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    failing = FailingProvider()
    first = service_factory(redis_url, provider=failing, video_negative_ttl=30)
    with pytest.raises(RenderError):
        await first.get_or_create(BLACK, WHITES)
    sha = first.cache.key_for(BLACK, WHITES).removeprefix("video:")
    assert 0 < redis_server.client().pttl(FAILED_PREFIX + sha) <= 30_000
    second, provider = counting(service_factory, tmp_path, redis_url, video_negative_ttl=30)
    with pytest.raises(RecentFailureError):
        await second.get_or_create(BLACK, WHITES)
    assert provider.calls == 0


async def test_two_instances_share_one_render_through_the_lock(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    first, first_provider = counting(service_factory, tmp_path, redis_url)
    second, second_provider = counting(service_factory, tmp_path, redis_url)
    first_provider.gate = asyncio.Event()
    winner = asyncio.create_task(first.get_or_create(BLACK, WHITES))
    await asyncio.wait_for(first_provider.started.wait(), 20)
    sha = first.cache.key_for(BLACK, WHITES).removeprefix("video:")
    assert redis_server.client().exists(LOCK_PREFIX + sha)
    waiter = asyncio.create_task(second.get_or_create(BLACK, WHITES, permanent=True))
    await eventually(lambda: second.stats()["lock_waits"] == 1)
    first_provider.gate.set()
    url_a, url_b = await asyncio.wait_for(asyncio.gather(winner, waiter), 30)
    assert url_a == url_b
    assert (first_provider.calls, second_provider.calls) == (1, 0)
    assert not redis_server.client().exists(LOCK_PREFIX + sha)  # released
    entry = await second.cache.aget_entry(BLACK, WHITES)
    assert entry is not None and entry.permanent  # the waiter's permanent wish was applied


async def test_lock_of_a_dead_instance_expires_and_is_taken_over(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    service, provider = counting(service_factory, tmp_path, redis_url)
    sha = service.cache.key_for(BLACK, WHITES).removeprefix("video:")
    redis_server.client().set(LOCK_PREFIX + sha, "someone-who-died", px=300)
    url = await asyncio.wait_for(service.get_or_create(BLACK, WHITES), 30)
    assert url.endswith(f"{sha}.mp4")
    assert provider.calls == 1
    assert service.stats()["lock_waits"] == 1


async def test_waiter_learns_of_the_holders_failure(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    service, provider = counting(service_factory, tmp_path, redis_url)
    sha = service.cache.key_for(BLACK, WHITES).removeprefix("video:")
    client = redis_server.client()
    client.set(LOCK_PREFIX + sha, "other-instance", px=60_000)
    call = asyncio.create_task(service.get_or_create(BLACK, WHITES))
    await eventually(lambda: service.stats()["lock_waits"] == 1)
    client.set(FAILED_PREFIX + sha, "RenderError: boom", px=30_000)
    with pytest.raises(RecentFailureError, match="boom"):
        await asyncio.wait_for(call, 20)
    assert provider.calls == 0


async def test_waiting_is_bounded(service_factory: ServiceFactory, tmp_path: Path,
                                  redis_url: str, redis_server: RedisServer) -> None:
    service, provider = counting(service_factory, tmp_path, redis_url)
    service.wait_timeout = 0.3
    sha = service.cache.key_for(BLACK, WHITES).removeprefix("video:")
    redis_server.client().set(LOCK_PREFIX + sha, "a-slow-instance", px=60_000)
    with pytest.raises(GenerationWaitTimeout):
        await asyncio.wait_for(service.get_or_create(BLACK, WHITES), 20)
    assert provider.calls == 0


async def test_the_lock_is_kept_alive_during_a_long_generation(
        service_factory: ServiceFactory, tmp_path: Path, redis_url: str,
        redis_server: RedisServer) -> None:
    ttl = 0.6
    service, provider = counting(service_factory, tmp_path, redis_url,
                                 video_generation_lock_ttl=ttl)
    provider.gate = asyncio.Event()
    call = asyncio.create_task(service.get_or_create(BLACK, WHITES))
    await asyncio.wait_for(provider.started.wait(), 20)
    sha = service.cache.key_for(BLACK, WHITES).removeprefix("video:")
    client = redis_server.client()
    loop = asyncio.get_running_loop()
    held_since = loop.time()
    # Wait for the keeper's extensions (each comes a third of a TTL after the last), not a clock.
    await eventually(lambda: service.stats()["lock_extensions"] >= 4)
    assert loop.time() - held_since > ttl  # without the keeper the lock would have expired
    assert client.exists(LOCK_PREFIX + sha)
    assert 0 < client.pttl(LOCK_PREFIX + sha) <= ttl * 1000
    provider.gate.set()
    await asyncio.wait_for(call, 20)
    assert not client.exists(LOCK_PREFIX + sha)


async def test_a_generation_past_the_deadline_is_given_up(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    service.deadline = 0.3
    provider.gate = asyncio.Event()  # e.g. queued behind other renders: never starts in time
    callers = [service.get_or_create(BLACK, WHITES, permanent=True) for _ in range(3)]
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)
    assert all(isinstance(r, VideoDeadlineExceeded) for r in results), results
    assert service.in_flight == 0
    assert service.stats()["deadline_exceeded"] == 1
    assert await service.cache.aget(BLACK, WHITES) is None
    assert list(service.storage.directory.glob("*")) == []  # the temporary file is gone
    # not the combination's fault: it is not in the negative cache, the next call renders
    provider.gate.set()
    service.deadline = 30.0
    assert (await service.get_or_create(BLACK, WHITES)).endswith(".mp4")
    assert provider.calls == 2


async def test_without_redis_single_flight_still_holds(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    service, provider = counting(service_factory, tmp_path, dead)
    urls = await asyncio.gather(*(service.get_or_create(BLACK, WHITES) for _ in range(20)))
    assert len(set(urls)) == 1
    assert provider.calls == 1
    await service.record_play(BLACK, WHITES)  # popularity falls back to memory
    assert [c.black for c, _ in await service.popularity.top(5)] == [BLACK]


async def test_missing_file_is_generated_again(service_factory: ServiceFactory,
                                               tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    url = await service.get_or_create(BLACK, WHITES)
    service.storage.path_for(url.split("/")[-1][:-4]).unlink()
    assert await service.get_or_create(BLACK, WHITES) == url
    assert provider.calls == 2
    assert service.stats()["repairs"] == 1


async def test_a_cancelled_caller_does_not_cancel_the_others(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path)
    provider.gate = asyncio.Event()
    leaving = asyncio.create_task(service.get_or_create(BLACK, WHITES))
    staying = asyncio.create_task(service.get_or_create(BLACK, WHITES))
    await asyncio.wait_for(provider.started.wait(), 20)
    leaving.cancel()
    provider.gate.set()
    url = await asyncio.wait_for(staying, 20)
    assert leaving.cancelled()
    assert await service.cache.aget(BLACK, WHITES) == url


@pytest.mark.parametrize("black,whites,message", [
    ("Lone \ud800 surrogate _", ["x"], "cannot be keyed"),
    ("x" * (MAX_BLACK_CHARS + 1), ["x"], f"limit is {MAX_BLACK_CHARS}"),
    ("Why?", ["a"] * (MAX_WHITE_CARDS + 1), f"at most {MAX_WHITE_CARDS}"),
    ("Why?", [], "at least one"),
    ("   ", ["a"], "empty"),
])
async def test_bad_input_is_a_clear_error(service_factory: ServiceFactory, tmp_path: Path,
                                          black: str, whites: list[str], message: str) -> None:
    service, provider = counting(service_factory, tmp_path)
    with pytest.raises(InvalidCardsError, match=message):
        await service.get_or_create(black, whites)
    assert provider.calls == 0
    await service.record_play(black, whites)  # ignored, never raises
    assert await service.popularity.top(5) == []


async def test_backpressure_refuses_instead_of_queueing(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    service, provider = counting(service_factory, tmp_path, video_max_pending=3,
                                 video_max_pending_temporary=1)
    provider.gate = asyncio.Event()  # hold every generation until released
    first = asyncio.create_task(service.get_or_create(BLACK, ["one"], permanent=False))
    await eventually(lambda: service.in_flight == 1)
    with pytest.raises(VideoBusyError, match="busy"):
        await service.get_or_create(BLACK, ["two"], permanent=False)  # speculative: refused
    winners = [asyncio.create_task(service.get_or_create(BLACK, [w], permanent=True))
               for w in ("three", "four")]
    await eventually(lambda: service.in_flight == 3)
    with pytest.raises(VideoBusyError):
        await service.get_or_create(BLACK, ["five"], permanent=True)
    assert service.stats()["busy"] == 2
    provider.gate.set()
    urls = await asyncio.gather(first, *winners)
    assert len(set(urls)) == 3
    assert provider.calls == 3  # the refused ones were never started
    assert await service.cache.aget(BLACK, ["two"]) is None



async def test_a_combination_flows_to_the_cache_without_being_checked_again(
        service_factory: ServiceFactory, tmp_path: Path, backend_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    service, provider = counting(service_factory, tmp_path, backend_url)
    combo = Combination("  " + BLACK, [WHITES[0] + "\n"])  # what the game hands over

    def checked_again(*args: object) -> object:
        raise AssertionError("the cards were validated or hashed again")

    with monkeypatch.context() as patched:
        for module, name in ((cards, "check_combination"), (keys, "check_combination"),
                             (keys, "_derive_key"), (keys, "_cached_key")):
            patched.setattr(module, name, checked_again)
        url = await service.get_or_create(combo)  # a miss: lock, render, publish, cache
        assert await service.get_or_create(combo, permanent=True) == url  # a hit, promoted
        await service.record_play(combo)
    assert provider.calls == 1
    assert url == f"/videos/{combo.key.removeprefix('video:')}.mp4"
    # The spec's form reaches the same entry, and the sidecar holds the normalised cards.
    assert await service.get_or_create(BLACK, WHITES, permanent=True) == url
    assert provider.calls == 1
    meta = dict(service.storage.iter_videos())[combo.key.removeprefix("video:")]
    assert meta is not None and (meta.black_card, meta.white_cards) == (BLACK, WHITES)
    assert meta.permanent
    assert [c for c, _ in await service.popularity.top(5)] == [combo]
    with pytest.raises(TypeError, match="pass it alone"):
        await service.get_or_create(combo, WHITES)  # type: ignore[call-overload]
