"""Server-to-client payloads (Socket.IO events and REST responses), built from game views and
events. See docs/protocol.md for examples."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from app.game import events as ev
from app.game.cards import WhiteCard
from app.game.views import RoomView


class Out(BaseModel):
    """A payload; ``model_validate(obj)`` copies it from the same-named attributes of ``obj``."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class BlackCardOut(Out):
    text: str
    pick: int
    draw: int


class PlayerOut(Out):
    id: str
    name: str
    score: int
    connected: bool
    is_host: bool
    is_czar: bool
    submitted: bool


class SubmissionOut(Out):
    submission_id: str
    cards: list[str]


class SettingsOut(Out):
    score_limit: int
    max_players: int
    hand_size: int
    submit_seconds: int | None
    judge_seconds: int | None
    deck_ids: list[str]


class RoomStateOut(Out):
    room_code: str
    phase: str
    paused: bool
    round: int
    host_id: str | None
    czar_id: str | None
    black_card: BlackCardOut | None
    players: list[PlayerOut]
    scores: dict[str, int]
    submissions: list[SubmissionOut]
    seconds_left: float | None
    winner_id: str | None
    settings: SettingsOut


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
    submissions: list[SubmissionOut]


class WinnerOut(Out):
    player_id: str
    name: str


class RoundWonOut(Out):
    round: int
    black_card: str
    white_cards: list[str]
    winner: WinnerOut
    scores: dict[str, int]


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


def room_state(view: RoomView) -> RoomStateOut:
    return RoomStateOut(
        room_code=view.code,
        phase=view.phase,
        paused=view.paused,
        round=view.round,
        host_id=view.host_id,
        czar_id=view.czar_id,
        black_card=(
            BlackCardOut.model_validate(view.black_card) if view.black_card is not None else None
        ),
        players=[PlayerOut.model_validate(p) for p in view.players],
        scores={p.id: p.score for p in view.players},
        submissions=_submissions(view.submissions),
        seconds_left=round(view.seconds_left, 1) if view.seconds_left is not None else None,
        winner_id=view.winner_id,
        settings=SettingsOut.model_validate(view.settings),  # deck_ids: tuple -> list
    )


def _submissions(subs: Sequence[ev.RevealedSubmission]) -> list[SubmissionOut]:
    return [
        SubmissionOut(submission_id=s.submission_id, cards=list(s.white_card_texts)) for s in subs
    ]


def hand(room_code: str, round_number: int, cards: Sequence[WhiteCard]) -> HandOut:
    return HandOut(
        room_code=room_code,
        round=round_number,
        cards=[CardOut(id=c.id, text=c.text) for c in cards],
    )


def submissions(e: ev.SubmissionsRevealed) -> SubmissionsOut:
    return SubmissionsOut(
        round=e.round, black_card=e.black_card_text, submissions=_submissions(e.submissions)
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
