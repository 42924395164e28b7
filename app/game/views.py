"""The public view of a room: what every player and the REST API may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.game.events import RevealedSubmission
from app.game.settings import RoomSettings

if TYPE_CHECKING:
    from app.game.room import Room


@dataclass(frozen=True, slots=True)
class PlayerView:
    id: str
    name: str
    score: int
    connected: bool
    is_host: bool
    is_czar: bool
    submitted: bool


@dataclass(frozen=True, slots=True)
class BlackCardView:
    text: str
    pick: int
    draw: int


@dataclass(frozen=True, slots=True)
class RoomView:
    code: str
    phase: str  # "lobby" | "submitting" | "judging" | "game_over"
    paused: bool  # in the lobby with the scores of an unfinished game
    round: int
    host_id: str | None
    czar_id: str | None
    black_card: BlackCardView | None
    players: tuple[PlayerView, ...]
    submissions: tuple[RevealedSubmission, ...]  # while judging: shuffled and anonymous
    seconds_left: float | None  # of the running round timer
    winner_id: str | None  # once the game is over
    settings: RoomSettings


def view_of(room: Room) -> RoomView:
    r = room.round
    players = tuple(
        PlayerView(
            id=p.id,
            name=p.name,
            score=p.score,
            connected=p.connected,
            is_host=p.id == room.host_id,
            is_czar=r is not None and p.id == r.czar_id,
            submitted=r is not None and p.id in r.submissions,
        )
        for p in room.players
    )
    return RoomView(
        code=room.code,
        phase=room.phase,
        paused=room.paused,
        round=room.round_number,
        host_id=room.host_id,
        czar_id=r.czar_id if r is not None else None,
        black_card=BlackCardView(r.black.text, r.black.pick, r.black.draw) if r else None,
        players=players,
        submissions=tuple(
            RevealedSubmission(s.submission_id, tuple(c.text for c in s.cards))
            for s in (r.revealed if r is not None else ())
        ),
        seconds_left=room.seconds_left(),
        winner_id=room.winner_id,
        settings=room.settings,
    )
