from __future__ import annotations

from typing import Any

import pytest

from app.game.errors import InvalidSettings
from app.game.settings import RoomSettings


def test_defaults() -> None:
    s = RoomSettings()
    assert (s.score_limit, s.max_players, s.hand_size) == (7, 10, 10)
    assert s.submit_seconds is None and s.judge_seconds is None
    assert s.deck_ids == ("punchline-cc0",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"score_limit": 0},
        {"score_limit": 51},
        {"score_limit": True},
        {"max_players": 2},
        {"max_players": 21},
        {"hand_size": 2},
        {"hand_size": 21},
        {"submit_seconds": 4},
        {"judge_seconds": 601},
        {"deck_ids": ()},
        {"deck_ids": ("a", "a")},
        {"deck_ids": ["a"]},
        {"deck_ids": tuple(f"d{i}" for i in range(51))},
    ],
)
def test_invalid_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidSettings):
        RoomSettings(**kwargs)


def test_bounds_are_inclusive() -> None:
    RoomSettings(score_limit=1, max_players=3, hand_size=3, submit_seconds=5, judge_seconds=600)
    RoomSettings(score_limit=50, max_players=20, hand_size=20)
