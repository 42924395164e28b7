"""The winners index and the poster frame: real renders, real Redis, the records on disk."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image, ImageChops

from app.cache.healer import MARKER_KEY
from app.core.cards import Combination
from app.game import events as ev
from app.sockets.video import VideoJobs
from app.video.reindex import index_healer, reindex
from app.video.service import VideoService
from app.video.storage import sha_of_key
from app.video.winners import ENTRY_PREFIX, ZSET_KEY, sentence_of
from tests.support.redis_server import RedisServer
from tests.video.conftest import ServiceFactory
from tests.video.mp4 import decode

HOSTILE = Combination("My secret: _.", ["<script>alert('x')</script> & friends"])


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


async def _win(service: VideoService, combo: Combination) -> str:
    await service.get_or_create(combo, permanent=True)
    winner = await service.record_winner(combo)
    assert winner is not None
    return winner.sha


def _last_frame(path: Path) -> Image.Image:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return frames[-1].to_image()


async def test_poster_is_the_final_frame_of_the_stored_video(
        service_factory: ServiceFactory) -> None:
    service = service_factory()
    url = await service.get_or_create(HOSTILE, permanent=True)
    sha = service.storage.sha_of_url(url)
    assert sha is not None
    mp4 = service.storage.path_for(sha)
    video = decode(mp4)
    assert video.frames > 0
    poster = service.storage.poster(sha)
    assert poster == mp4.with_suffix(".png")
    image = Image.open(io.BytesIO(poster.read_bytes()))
    assert image.format == "PNG" and image.size == (video.width, video.height)
    # The final frame (the whole filled-in card), not a blank one: it has text on it.
    assert image.convert("L").getextrema()[1] > 200
    diff = ImageChops.difference(image.convert("RGB"), _last_frame(mp4).convert("RGB"))
    assert max(high for _, high in diff.getextrema()) <= 2


@pytest.mark.slow
async def test_winners_are_listed_newest_first_with_sentences_and_no_names(
        service_factory: ServiceFactory, redis_url: str, redis_server: RedisServer) -> None:
    service = service_factory(redis_url)
    service.winners.clock = Clock()
    combos = [Combination(f"Winner {i}: _.", [f"answer {i}"]) for i in range(3)]
    shas = [await _win(service, c) for c in combos]
    raw = redis_server.client()
    assert raw.zrevrange(ZSET_KEY, 0, -1) == shas[::-1]
    assert raw.ttl(ENTRY_PREFIX + shas[0]) == -1 and raw.ttl(ZSET_KEY) == -1

    first, cursor = await service.winners.page(limit=2)
    assert [w.sha for w in first] == shas[:0:-1] and cursor is not None
    assert first[0].sentence == "Winner 2: answer 2."
    rest, end = await service.winners.page(limit=2, before=cursor)
    assert [w.sha for w in rest] == [shas[0]] and end is None

    # The same combination winning again goes back to the top.
    await service.record_winner(combos[0])
    top, _ = await service.winners.page(limit=1)
    assert top[0].sha == shas[0]
    assert (await service.winners.get(shas[1])) is not None
    assert await service.winners.get("0" * 64) is None
    assert await service.winners.get("../etc/passwd") is None


async def test_a_take_down_survives_records_and_rebuilds(
        service_factory: ServiceFactory, redis_url: str, redis_server: RedisServer) -> None:
    service = service_factory(redis_url)
    keep, gone = Combination("Keep _.", ["this"]), Combination("Drop _.", ["that"])
    keep_sha, gone_sha = await _win(service, keep), await _win(service, gone)
    assert await service.winners.take_down(gone_sha)
    assert await service.winners.get(gone_sha) is None
    assert not await service.winners.take_down("1" * 64)  # never a winner
    assert not await service.winners.take_down("not-a-sha")
    # a combination without a stored video never enters the gallery
    assert await service.record_winner(Combination("Never _.", ["rendered"])) is None
    # winning again does not bring it back
    assert await service.record_winner(gone) is None
    # Redis loses everything: the rebuild restores the gallery from the records, minus the
    # taken-down winner.
    redis_server.flush()
    assert (await service.winners.page())[0] == []
    report = await reindex(service)
    assert report.winners == 1
    listed, _ = await service.winners.page()
    assert [w.sha for w in listed] == [keep_sha]
    assert listed[0].sentence == sentence_of(keep)
    assert redis_server.client().zscore(ZSET_KEY, gone_sha) is None


async def test_the_self_healing_rebuild_covers_the_winners(
        service_factory: ServiceFactory, redis_url: str, redis_server: RedisServer) -> None:
    service = service_factory(redis_url)
    sha = await _win(service, HOSTILE)
    redis_server.flush()
    healer = index_healer(service)
    assert await healer.check_once()
    raw = redis_server.client()
    assert raw.exists(MARKER_KEY) and raw.zscore(ZSET_KEY, sha) is not None
    entry = raw.get(ENTRY_PREFIX + sha)
    assert entry is not None and "<script>" in entry  # stored as text; pages escape


async def test_memory_stand_in_loads_the_records_on_disk(
        service_factory: ServiceFactory, tmp_path: Path) -> None:
    first = service_factory()
    sha = await _win(first, HOSTILE)
    assert first.winners.records.path(sha).is_file()
    # A new process without Redis finds the gallery on disk.
    second = service_factory()
    listed, _ = await second.winners.page()
    assert [w.sha for w in listed] == [sha]
    assert await second.winners.take_down(sha)
    assert (await second.winners.page())[0] == []
    assert (await service_factory().winners.page())[0] == []


async def test_an_old_video_without_a_poster_gets_one_when_it_wins(
        service_factory: ServiceFactory) -> None:
    service = service_factory()
    url = await service.get_or_create(HOSTILE, permanent=True)
    sha = sha_of_key(HOSTILE.key)
    assert url.endswith(sha + ".mp4")
    service.storage.poster_path(sha).unlink()
    assert service.storage.poster(sha) is None
    await service.record_winner(HOSTILE)
    assert service.storage.poster(sha) is not None


@pytest.mark.parametrize("broken", [b"", b"not an mp4"])
def test_a_poster_that_cannot_be_made_fails_nothing(
        service_factory: ServiceFactory, broken: bytes) -> None:
    storage = service_factory().storage
    sha = "a" * 64
    storage.directory.mkdir(parents=True, exist_ok=True)
    storage.path_for(sha).write_bytes(broken)
    assert storage.write_poster(sha) is False
    assert storage.poster(sha) is None


def _won(combo: Combination, *, public: bool) -> ev.RoundWon:
    black, whites = combo.display()
    return ev.RoundWon(round=1, black_card_text=black, white_card_texts=whites,
                       winner_player_id="p1", winner_name="Secret Name", submission_id="s0",
                       scores={"p1": 1}, public_gallery=public)


async def test_rooms_out_of_the_gallery_never_enter_it(service_factory: ServiceFactory) -> None:
    service = service_factory()
    sent: list[tuple[str, dict[str, Any]]] = []

    async def emit(event: str, payload: dict[str, Any], channel: str) -> None:
        sent.append((event, payload))

    jobs = VideoJobs(emit, service, speculative=False, timeout=30)
    private, public = Combination("Private _.", ["joke"]), Combination("Public _.", ["joke"])
    jobs.on_won("room:A", _won(private, public=False))
    jobs.on_won("room:B", _won(public, public=True))
    while jobs.pending:
        await asyncio.sleep(0.02)
    assert [event for event, _ in sent] == ["video_ready", "video_ready"]  # both rendered
    listed, _ = await service.winners.page()
    assert [w.sha for w in listed] == [sha_of_key(public.key)]
    assert "Secret Name" not in listed[0].sentence
    assert not service.winners.records.path(sha_of_key(private.key)).exists()
    assert await service.winners.get(sha_of_key(private.key)) is None
