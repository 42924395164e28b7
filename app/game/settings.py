"""Per-room settings, chosen by the host when the room is created."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.game.decks import DEFAULT_DECK_ID
from app.game.errors import InvalidSettings

SCORE_LIMIT_RANGE = (1, 50)
MAX_PLAYERS_RANGE = (3, 20)
HAND_SIZE_RANGE = (3, 20)
TIMER_RANGE = (5, 600)  # seconds
MAX_DECKS = 50
MIN_PLAYERS = 3


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSettings(f"{name} must be an integer from {low} to {high}")


@dataclass(frozen=True, slots=True)
class RoomSettings:
    score_limit: int = 7
    max_players: int = 10
    hand_size: int = 10
    submit_seconds: int | None = None  # None: no submit timer
    judge_seconds: int | None = None  # None: no judge timer
    deck_ids: tuple[str, ...] = field(default=(DEFAULT_DECK_ID,))
    public_gallery: bool = True  # winners' videos may appear on /winners (opt-out)

    def __post_init__(self) -> None:
        _check_range("score_limit", self.score_limit, SCORE_LIMIT_RANGE)
        _check_range("max_players", self.max_players, MAX_PLAYERS_RANGE)
        _check_range("hand_size", self.hand_size, HAND_SIZE_RANGE)
        for name in ("submit_seconds", "judge_seconds"):
            value = getattr(self, name)
            if value is not None:
                _check_range(name, value, TIMER_RANGE)
        if not isinstance(self.public_gallery, bool):
            raise InvalidSettings("public_gallery must be true or false")
        if not isinstance(self.deck_ids, tuple) or not self.deck_ids:
            raise InvalidSettings("deck_ids must name at least one deck")
        if len(self.deck_ids) > MAX_DECKS:
            raise InvalidSettings(f"deck_ids may name at most {MAX_DECKS} decks")
        if len(set(self.deck_ids)) != len(self.deck_ids):
            raise InvalidSettings("deck_ids contains a deck twice")
