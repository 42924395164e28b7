"""Client-to-server payloads, validated with pydantic before anything changes.

Models are strict (no "1" for 1) and forbid unknown fields. Room settings are defined once, in
``app.game.settings.RoomSettings``: ``SettingsIn`` takes its ranges and defaults from there and
only adds the wire's strictness (a JSON list for ``deck_ids``, no extra fields).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.cards import MAX_PICK
from app.game.settings import (
    HAND_SIZE_RANGE,
    MAX_DECKS,
    MAX_PLAYERS_RANGE,
    SCORE_LIMIT_RANGE,
    TIMER_RANGE,
    RoomSettings,
)

ShortStr = Annotated[str, StringConstraints(max_length=64)]
NameStr = Annotated[str, StringConstraints(max_length=100)]  # the room applies the name rules
Timer = Annotated[int, Field(ge=TIMER_RANGE[0], le=TIMER_RANGE[1])] | None
DEFAULTS = RoomSettings()


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SettingsIn(Payload):
    score_limit: Annotated[int, Field(ge=SCORE_LIMIT_RANGE[0], le=SCORE_LIMIT_RANGE[1])] = (
        DEFAULTS.score_limit
    )
    max_players: Annotated[int, Field(ge=MAX_PLAYERS_RANGE[0], le=MAX_PLAYERS_RANGE[1])] = (
        DEFAULTS.max_players
    )
    hand_size: Annotated[int, Field(ge=HAND_SIZE_RANGE[0], le=HAND_SIZE_RANGE[1])] = (
        DEFAULTS.hand_size
    )
    submit_seconds: Timer = DEFAULTS.submit_seconds
    judge_seconds: Timer = DEFAULTS.judge_seconds
    deck_ids: Annotated[list[ShortStr], Field(min_length=1, max_length=MAX_DECKS)] = Field(
        default_factory=lambda: list(DEFAULTS.deck_ids)
    )
    public_gallery: bool = DEFAULTS.public_gallery

    def to_settings(self) -> RoomSettings:
        return RoomSettings(
            score_limit=self.score_limit,
            max_players=self.max_players,
            hand_size=self.hand_size,
            submit_seconds=self.submit_seconds,
            judge_seconds=self.judge_seconds,
            deck_ids=tuple(self.deck_ids),
            public_gallery=self.public_gallery,
        )


class CreateRoomIn(Payload):
    name: NameStr
    settings: SettingsIn | None = None


class UpdateSettingsIn(Payload):
    """update_settings: the fields given replace the room's; the others keep their values."""

    settings: SettingsIn

    def merged(self, current: RoomSettings) -> RoomSettings:
        given = {name: getattr(self.settings.to_settings(), name)
                 for name in self.settings.model_fields_set}
        return dataclasses.replace(current, **given)


class JoinRoomIn(Payload):
    room_code: Annotated[str, StringConstraints(max_length=16)]
    name: NameStr


class EmptyIn(Payload):
    """start_game and leave_room take no fields."""


class SubmitCardsIn(Payload):
    card_ids: Annotated[list[ShortStr], Field(min_length=1, max_length=MAX_PICK)]  # a card rule


class PickWinnerIn(Payload):
    submission_id: ShortStr


class KickPlayerIn(Payload):
    player_id: ShortStr
