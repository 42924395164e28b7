"""All rooms of a server, by code."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import lru_cache

from app.game.codes import generate_code, normalize_code
from app.game.decks import DeckLibrary, get_deck_library
from app.game.errors import InvalidSettings, RoomNotFound
from app.game.events import Event
from app.game.players import Player, clean_name
from app.game.room import WHITE_PER_PLAYER_MARGIN, Room
from app.game.settings import MIN_PLAYERS, RoomSettings


class RoomRegistry:
    def __init__(
        self,
        library: DeckLibrary,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.library = library
        self._rng = rng if rng is not None else random.SystemRandom()
        self._clock = clock
        self._rooms: dict[str, Room] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def create_room(
        self, host_name: str, settings: RoomSettings | None = None
    ) -> tuple[Room, Player, list[Event]]:
        settings = settings if settings is not None else RoomSettings()
        clean_name(host_name)  # fail before a room exists
        decks = []
        for deck_id in settings.deck_ids:
            deck = self.library.get(deck_id)
            if deck is None:
                raise InvalidSettings(f"unknown deck {deck_id!r}")
            decks.append(deck)
        whites = len({c.id for d in decks for c in d.white})
        need = MIN_PLAYERS * (settings.hand_size + WHITE_PER_PLAYER_MARGIN)
        if not any(d.black for d in decks) or whites < need:
            raise InvalidSettings(
                f"the chosen decks are too small: need black cards and at least {need} white cards"
            )
        code = generate_code(self._rng, self._rooms)
        room = Room(code, settings, decks, rng=self._rng, clock=self._clock)
        player, events = room.add_player(host_name)
        self._rooms[code] = room
        return room, player, events

    def find(self, raw_code: str) -> Room | None:
        code = normalize_code(raw_code)
        return self._rooms.get(code) if code is not None else None

    def get(self, raw_code: str) -> Room:
        room = self.find(raw_code)
        if room is None:
            raise RoomNotFound(f"no room with code {raw_code.strip()[:16]!r}")
        return room

    def close(self, room: Room) -> bool:
        """Forget a room whoever still sits in it (idle, or nobody connected)."""
        if self._rooms.get(room.code) is room:
            del self._rooms[room.code]
            return True
        return False

    def discard_if_empty(self, room: Room) -> bool:
        """Forget a room nobody sits in any more."""
        if room.is_empty and self._rooms.get(room.code) is room:
            del self._rooms[room.code]
            return True
        return False


@lru_cache(maxsize=1)
def get_registry() -> RoomRegistry:
    """The process-wide registry, shared by the Socket.IO handlers and the REST routes."""
    return RoomRegistry(get_deck_library())
