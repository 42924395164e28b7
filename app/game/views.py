"""The public view of a room: what every player and the REST API may see.

This is the one definition of the room state. Its field names are the wire names: the Socket.IO
``room_state`` event and ``GET /api/rooms/{code}`` serialise these dataclasses as they are
(``app/sockets/payloads.py``), so a field added here reaches every client and the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
class SubmissionView:
    """A revealed submission: anonymous, in shuffled order."""

    submission_id: str
    cards: tuple[str, ...]  # white card texts, in blank order


@dataclass(frozen=True, slots=True)
class RoomView:
    room_code: str
    phase: str  # "lobby" | "submitting" | "judging" | "game_over"
    paused: bool  # in the lobby with the scores of an unfinished game
    round: int
    host_id: str | None
    czar_id: str | None
    black_card: BlackCardView | None
    players: tuple[PlayerView, ...]
    scores: dict[str, int]  # by player id, for clients that only keep scores
    submissions: tuple[SubmissionView, ...]  # while judging: shuffled and anonymous
    seconds_left: float | None  # of the running round timer, to 0.1 s
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
    left = room.seconds_left()
    return RoomView(
        room_code=room.code,
        phase=room.phase,
        paused=room.paused,
        round=room.round_number,
        host_id=room.host_id,
        czar_id=r.czar_id if r is not None else None,
        black_card=BlackCardView(r.black.text, r.black.pick, r.black.draw) if r else None,
        players=players,
        scores={p.id: p.score for p in players},
        submissions=room.revealed(),
        seconds_left=round(left, 1) if left is not None else None,
        winner_id=room.winner_id,
        settings=room.settings,
    )
