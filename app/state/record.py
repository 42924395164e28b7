"""A room record: the game's room plus who sits where, as one versioned unit of storage.

The game (app/game) knows players; the record adds what the service needs around them: each
seat's reconnect token (a hash of it), the connection in it and the instance that holds that
connection, and when the room last saw a player act. Records are stored as JSON text; the
version lives beside the text in the store, which compares it on every save.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.game import events as ev
from app.game.codes import normalize_code
from app.game.decks import DeckLibrary
from app.game.room import Room
from app.game.snapshot import room_from_data, room_to_data

RoundOutcome = ev.RoundWon | ev.RoundVoided


@dataclass(slots=True)
class SeatState:
    token_hash: str
    sid: str | None = None  # the Socket.IO connection in the seat; None while disconnected
    instance: str | None = None  # the instance holding that connection
    disconnected_at: float | None = None  # wall clock


@dataclass(slots=True)
class RoomRecord:
    room: Room
    seats: dict[str, SeatState] = field(default_factory=dict)  # by player id
    last_active: float = 0.0  # wall clock of the last player action
    unattended_since: float | None = None  # since when no seat holds a connection
    idle_check: float = 0.0  # when the ticker next looks whether the room went idle
    due: float | None = None  # when this version asked the ticker to look at the room
    version: int = 0  # the stored version this record was loaded at (0: never stored)
    # Set by a transition, never stored:
    closed: str | None = None  # "idle" or "abandoned": delete the room
    left_seats: dict[str, SeatState] = field(default_factory=dict)  # seats of players who left

    @property
    def code(self) -> str:
        return self.room.code

    def attended(self) -> bool:
        return any(seat.sid is not None for seat in self.seats.values())


def new_token(room_code: str) -> str:
    """A reconnect token: the room code (so any instance knows where to look) and a secret."""
    return f"{room_code}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def room_of_token(token: str) -> str | None:
    code, _, secret = token.partition(".")
    if not secret or len(token) > 128:
        return None
    return normalize_code(code)


def encode(record: RoomRecord) -> str:
    # orjson: a record is ~10 KB and every move saves one; the stdlib json takes 10x as long.
    return orjson.dumps({
        "room": room_to_data(record.room),
        "seats": {pid: [s.token_hash, s.sid, s.instance, s.disconnected_at]
                  for pid, s in record.seats.items()},
        "active": record.last_active,
        "unattended": record.unattended_since,
        "idle_check": record.idle_check,
        "due": record.due,
    }).decode()


def decode(text: str | bytes, version: int, library: DeckLibrary,
           clock: Callable[[], float]) -> RoomRecord:
    data = orjson.loads(text)
    return RoomRecord(
        room=room_from_data(data["room"], library, clock=clock),
        seats={pid: SeatState(*s) for pid, s in data["seats"].items()},
        last_active=float(data["active"]),
        unattended_since=data["unattended"],
        idle_check=float(data["idle_check"]),
        due=data["due"],
        version=version,
    )


def encode_outcome(game: int, outcome: RoundOutcome) -> str:
    if isinstance(outcome, ev.RoundVoided):
        body: dict[str, Any] = {"kind": "voided", "round": outcome.round,
                                "reason": outcome.reason}
    else:
        body = {"kind": "won", "round": outcome.round, "black": outcome.black_card_text,
                "whites": list(outcome.white_card_texts), "winner": outcome.winner_player_id,
                "name": outcome.winner_name, "submission": outcome.submission_id,
                "scores": outcome.scores, "left": outcome.winner_left,
                "public": outcome.public_gallery}
    return orjson.dumps({"game": game, **body}).decode()


def decode_outcome(text: str | bytes) -> tuple[int, RoundOutcome]:
    d = orjson.loads(text)
    if d["kind"] == "voided":
        return d["game"], ev.RoundVoided(d["round"], d["reason"])
    return d["game"], ev.RoundWon(
        round=d["round"], black_card_text=d["black"], white_card_texts=tuple(d["whites"]),
        winner_player_id=d["winner"], winner_name=d["name"], submission_id=d["submission"],
        scores=d["scores"], winner_left=d["left"], public_gallery=d["public"])
