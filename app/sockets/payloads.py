"""Server-to-client payloads (Socket.IO events and REST responses), built from game views and
events. See docs/protocol.md for examples.

The room state has one definition, ``app.game.views.RoomView``; it is serialised as it is
(``to_json``) for ``room_state`` and served as the REST response model, so no second copy of its
fields exists here. The other payloads are events and have their own small models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from app.game import events as ev
from app.game.cards import WhiteCard
from app.game.views import RoomView, SubmissionView


class Out(BaseModel):
    """A payload; ``model_validate(obj)`` copies it from the same-named attributes of ``obj``."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class CardOut(Out):
    id: str
    text: str


class HandOut(Out):
    room_code: str
    round: int
    cards: list[CardOut]


class SubmissionsOut(Out):
    round: int
    black_card: str
    submissions: list[SubmissionView]


class WinnerOut(Out):
    player_id: str
    name: str


class RoundWonOut(Out):
    round: int
    black_card: str
    white_cards: list[str]
    winner: WinnerOut
    scores: dict[str, int]


RoundEndReason = Literal[
    "won", "submit_timeout", "judge_timeout", "czar_left", "not_enough_players"
]


class RoundEndedOut(Out):
    round: int
    reason: RoundEndReason


class GamePausedOut(Out):
    reason: Literal["not_enough_players"]
    scores: dict[str, int]


class GameResumedOut(Out):
    scores: dict[str, int]


class RoomClosedOut(Out):
    room_code: str
    reason: str  # "idle" | "abandoned"
    message: str


class GameOverOut(Out):
    scores: dict[str, int]
    winner: WinnerOut


class VideoReadyOut(Out):
    round: int
    black_card: str
    white_cards: list[str]
    video_url: str


class VideoFailedOut(Out):
    round: int
    reason: str


class ErrorOut(Out):
    code: str
    message: str


_ROOM_VIEW: TypeAdapter[RoomView] = TypeAdapter(RoomView)


def to_json(view: RoomView) -> dict[str, Any]:
    """The room state as JSON-ready data (tuples become lists)."""
    data: dict[str, Any] = _ROOM_VIEW.dump_python(view, mode="json")
    return data


def hand(room_code: str, round_number: int, cards: Sequence[WhiteCard]) -> HandOut:
    return HandOut(
        room_code=room_code,
        round=round_number,
        cards=[CardOut(id=c.id, text=c.text) for c in cards],
    )


def revealed(e: ev.SubmissionsRevealed) -> SubmissionsOut:
    return SubmissionsOut(
        round=e.round, black_card=e.black_card_text, submissions=list(e.submissions)
    )


def submissions(view: RoomView) -> SubmissionsOut | None:
    """What the czar judges, from the room's view; None unless the room is judging."""
    if view.phase != "judging" or view.black_card is None:
        return None
    return SubmissionsOut(
        round=view.round, black_card=view.black_card.text, submissions=list(view.submissions)
    )


def round_won(e: ev.RoundWon) -> RoundWonOut:
    return RoundWonOut(
        round=e.round,
        black_card=e.black_card_text,
        white_cards=list(e.white_card_texts),
        winner=WinnerOut(player_id=e.winner_player_id, name=e.winner_name),
        scores=e.scores,
    )


def game_over(e: ev.GameOver) -> GameOverOut:
    return GameOverOut(
        scores=e.scores, winner=WinnerOut(player_id=e.winner_player_id, name=e.winner_name)
    )
