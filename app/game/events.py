"""What a transition did, for the socket layer to broadcast. Plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.game.views import SubmissionView

LeaveReason = Literal["left", "kicked", "timed_out"]
# Why a round ended without a winner. "submit_timeout": the submit timer ran out and nobody had
# submitted (with submissions, the timer reveals them instead).
VoidReason = Literal["czar_left", "judge_timeout", "submit_timeout", "not_enough_players"]


@dataclass(frozen=True, slots=True)
class PlayerJoined:
    player_id: str
    name: str


@dataclass(frozen=True, slots=True)
class PlayerLeft:
    player_id: str
    name: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class PlayerDisconnected:
    player_id: str


@dataclass(frozen=True, slots=True)
class PlayerReconnected:
    player_id: str


@dataclass(frozen=True, slots=True)
class HostChanged:
    host_id: str


@dataclass(frozen=True, slots=True)
class GameStarted:
    resumed: bool  # True when a paused game continues with its scores


@dataclass(frozen=True, slots=True)
class RoundStarted:
    round: int
    czar_id: str
    black_card_text: str
    pick: int
    draw: int


@dataclass(frozen=True, slots=True)
class CardsSubmitted:
    round: int
    player_id: str


@dataclass(frozen=True, slots=True)
class SubmissionWithdrawn:
    round: int
    player_id: str


@dataclass(frozen=True, slots=True)
class SubmissionsRevealed:
    round: int
    black_card_text: str
    submissions: tuple[SubmissionView, ...]  # shuffled, anonymous, as the room view shows them


@dataclass(frozen=True, slots=True)
class RoundWon:
    round: int
    black_card_text: str
    white_card_texts: tuple[str, ...]
    winner_player_id: str
    winner_name: str
    submission_id: str
    scores: dict[str, int]
    winner_left: bool = False  # the author left after the reveal: the win scores nothing
    public_gallery: bool = True  # the room's setting: may the video enter the public gallery


@dataclass(frozen=True, slots=True)
class RoundVoided:
    round: int
    reason: VoidReason


@dataclass(frozen=True, slots=True)
class GamePaused:
    reason: Literal["not_enough_players"]
    scores: dict[str, int]


@dataclass(frozen=True, slots=True)
class GameOver:
    winner_player_id: str
    winner_name: str
    scores: dict[str, int]


@dataclass(frozen=True, slots=True)
class DeckReshuffled:
    kind: Literal["white", "black"]


Event = (
    PlayerJoined
    | PlayerLeft
    | PlayerDisconnected
    | PlayerReconnected
    | HostChanged
    | GameStarted
    | RoundStarted
    | CardsSubmitted
    | SubmissionWithdrawn
    | SubmissionsRevealed
    | RoundWon
    | RoundVoided
    | GamePaused
    | GameOver
    | DeckReshuffled
)
