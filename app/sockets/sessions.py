"""Who sits where: reconnect tokens, seats and the Socket.IO connection (sid) in each seat."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from app.game.errors import GameError


class NotInRoom(GameError):
    code = "not_in_room"


class AlreadyInRoom(GameError):
    code = "already_in_room"


@dataclass(eq=False, slots=True)
class Seat:
    token: str  # secret; lets a new connection take the seat back
    room_code: str
    player_id: str
    sid: str | None = None  # None while disconnected
    disconnected_at: float | None = None


class Sessions:
    def __init__(self) -> None:
        self._by_token: dict[str, Seat] = {}
        self._by_sid: dict[str, Seat] = {}
        self._by_player: dict[tuple[str, str], Seat] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def seat(self, room_code: str, player_id: str, sid: str) -> Seat:
        """A new seat with a fresh token, taken by ``sid``."""
        if sid in self._by_sid:
            raise AlreadyInRoom("this connection is already in a room; leave it first")
        seat = Seat(secrets.token_urlsafe(32), room_code, player_id)
        self._by_token[seat.token] = seat
        self._by_player[(room_code, player_id)] = seat
        self.attach(seat, sid)
        return seat

    def by_sid(self, sid: str) -> Seat | None:
        return self._by_sid.get(sid)

    def require(self, sid: str) -> Seat:
        seat = self._by_sid.get(sid)
        if seat is None:
            raise NotInRoom("create or join a room first")
        return seat

    def by_token(self, token: str) -> Seat | None:
        return self._by_token.get(token)

    def by_player(self, room_code: str, player_id: str) -> Seat | None:
        return self._by_player.get((room_code, player_id))

    def attach(self, seat: Seat, sid: str) -> str | None:
        """Put ``sid`` in the seat; returns the sid it replaces, if any.

        One seat per connection: a connection that holds another seat is refused, so a seat can
        never be left pointing at a connection that has moved on (a ghost)."""
        held = self._by_sid.get(sid)
        if held is not None and held is not seat:
            raise AlreadyInRoom("this connection is already in a room; leave it first")
        old = seat.sid
        if old is not None:
            self._by_sid.pop(old, None)
        seat.sid = sid
        seat.disconnected_at = None
        self._by_sid[sid] = seat
        return old

    def detach(self, sid: str, now: float) -> Seat | None:
        """The connection ``sid`` is gone; its seat (if any) waits for a reconnect."""
        seat = self._by_sid.pop(sid, None)
        if seat is not None and seat.sid == sid:
            seat.sid = None
            seat.disconnected_at = now
        return seat

    def drop(self, room_code: str, player_id: str) -> Seat | None:
        """Forget a seat for good (the player left); its token stops working."""
        seat = self._by_player.pop((room_code, player_id), None)
        if seat is None:
            return None
        self._by_token.pop(seat.token, None)
        if seat.sid is not None:
            self._by_sid.pop(seat.sid, None)
        return seat

    def attached(self) -> list[Seat]:
        """Seats with a connection in them."""
        return list(self._by_sid.values())

    def expired(self, now: float, grace: float) -> list[Seat]:
        """Seats whose connection has been gone for longer than ``grace`` seconds."""
        return [
            s
            for s in self._by_token.values()
            if s.sid is None and s.disconnected_at is not None and now - s.disconnected_at >= grace
        ]
