"""The pure parts of the socket layer: rate limiting, seats, payload models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.cards import MAX_PICK, MAX_WHITE_CHARS, Combination
from app.game import events as ev
from app.game.settings import RoomSettings
from app.game.views import SubmissionView
from app.sockets.connections import ConnectionCounter
from app.sockets.logwindow import LogWindows
from app.sockets.packets import MalformedPackets
from app.sockets.ratelimit import TokenBucket
from app.sockets.schemas import CreateRoomIn, SettingsIn, SubmitCardsIn
from app.sockets.server import describe
from app.sockets.video import VideoJobs
from tests.game.support import FakeClock
from tests.sockets.support import FakeVideoService


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.5)  # one token back
    assert bucket.take() and not bucket.take()
    clock.advance(100)  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_settings_payload_maps_to_room_settings() -> None:
    assert SettingsIn().to_settings() == RoomSettings()
    s = SettingsIn.model_validate({"score_limit": 3, "judge_seconds": 30, "deck_ids": ["a"]})
    assert s.to_settings() == RoomSettings(score_limit=3, judge_seconds=30, deck_ids=("a",))


@pytest.mark.parametrize(
    "data",
    [
        {"name": "Ada", "settings": {"score_limit": 7.0}},
        {"name": "Ada", "settings": {"score_limit": True}},
        {"name": "Ada", "settings": {"submit_seconds": "30"}},
        {"name": "Ada", "settings": {"deck_ids": "punchline-cc0"}},
        {"name": "Ada", "settings": {"deck_ids": ["x" * 65]}},
        {"name": None},
    ],
)
def test_strict_payloads(data: object) -> None:
    with pytest.raises(ValidationError):
        CreateRoomIn.model_validate(data)


def test_a_submission_holds_up_to_the_largest_pick() -> None:
    ids = [f"d:w:{i}" for i in range(MAX_PICK + 1)]
    assert SubmitCardsIn.model_validate({"card_ids": ids[:MAX_PICK]}).card_ids == ids[:MAX_PICK]
    with pytest.raises(ValidationError):
        SubmitCardsIn.model_validate({"card_ids": ids})


def test_validation_errors_are_summarised() -> None:
    with pytest.raises(ValidationError) as info:
        SubmitCardsIn.model_validate({"card_ids": [1, 2], "x": 1})
    message = describe(info.value)
    assert "card_ids.0" in message and "x: Extra inputs are not permitted" in message
    assert len(message) <= 300


async def test_connection_counts_are_a_count_per_address() -> None:
    counts = ConnectionCounter(limit=2, ttl=30, shared=lambda: None)  # this process only
    assert await counts.open("s1", "a") and await counts.open("s2", "a")
    assert not await counts.open("s3", "a")
    assert await counts.open("s4", "b")
    await counts.close("s1")
    assert counts.count("a") == 1 and await counts.open("s5", "a")
    for _ in range(3):
        await counts.close("s4")  # more closes than opens never go negative
    assert counts.count("b") == 0


def test_malformed_packets_one_line_a_window_and_close_at_the_limit() -> None:
    clock = FakeClock()
    packets = MalformedPackets(limit=3, window=60.0, clock=clock)
    verdicts = [packets.record("c") for _ in range(4)]
    assert [v.log for v in verdicts] == [True, False, False, False]
    assert [v.close for v in verdicts] == [False, False, True, False]  # closed once
    clock.advance(61)
    later = packets.record("c")
    assert later.log and later.previous == 4 and not later.close
    packets.record("c")
    assert packets.forget("c") == 1  # one packet no line has counted
    assert packets.forget("c") == 0


def test_log_windows_one_line_per_key_a_window_and_forget_old_keys() -> None:
    clock = FakeClock()
    windows = LogWindows(window=60.0, clock=clock)
    assert [windows.hit("a") for _ in range(4)] == [0, None, None, None]
    assert windows.hit("b") == 0  # another key has its own window
    clock.advance(61)
    assert windows.hit("a") == 3  # a new window: one line, counting the three kept quiet
    assert windows.sweep() == []  # "b" logged its only hit
    assert len(windows) == 1
    windows.hit("a")
    clock.advance(61)
    assert windows.sweep() == [("a", 1)]  # one last line for what no line counted
    assert len(windows) == 0 and windows.sweep() == []


async def test_video_jobs_build_each_combination_once_and_refuse_bad_cards() -> None:
    video = FakeVideoService()
    emitted: list[tuple[str, dict[str, Any], str]] = []

    async def emit(event: str, payload: dict[str, Any], channel: str) -> None:
        emitted.append((event, payload, channel))

    jobs = VideoJobs(emit, video, timeout=5.0)
    too_long = "w" * (MAX_WHITE_CHARS + 1)
    jobs.on_revealed(ev.SubmissionsRevealed(1, "Why _?", (
        SubmissionView("s0", ("cats",)), SubmissionView("s1", (too_long,)))))
    jobs.on_won("room:X", ev.RoundWon(1, "Why _?", (too_long,), "p_1", "Ada", "s1", {}))
    jobs.on_won("room:X", ev.RoundWon(1, "Why _?", ("cats",), "p_2", "Bo", "s0", {}))
    while jobs.pending:
        await asyncio.sleep(0.01)
    good = Combination("Why _?", ["cats"])
    assert video.plays == [good]  # the bad submission is not counted
    assert video.created[0] == (video.plays[0], False)  # the same value, rendered ahead
    assert video.created[0][0] is video.plays[0]
    assert video.created[1:] == [(good, True)]  # the bad winner never reached the service
    failed = [p for name, p, _ in emitted if name == "video_failed"]
    assert failed == [{"round": 1, "reason": failed[0]["reason"]}]
    assert failed[0]["reason"].startswith(
        f"InvalidCardsError: white_cards[0] is {MAX_WHITE_CHARS + 1} characters")
    assert sorted(name for name, _, _ in emitted) == ["video_failed", "video_ready"]
