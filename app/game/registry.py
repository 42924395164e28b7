"""Making new rooms: checked settings and decks, a fresh code, the host seated.

Rooms are kept by the room store (app/state), not here; the store refuses a code that is
already taken and the caller then asks for another room.
"""

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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.library = library
        self._rng = rng if rng is not None else random.SystemRandom()
        self._clock = clock

    def create_room(
        self, host_name: str, settings: RoomSettings | None = None
    ) -> tuple[Room, Player, list[Event]]:
        """A new room with a random code and its host; store it (the code may be taken)."""
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
        code = generate_code(self._rng)
        room = Room(code, settings, decks, rng=self._rng, clock=self._clock)
        player, events = room.add_player(host_name)
        return room, player, events

    @staticmethod
    def check_code(raw_code: str) -> str:
        """The canonical code, or ``RoomNotFound`` for something that cannot be one."""
        code = normalize_code(raw_code)
        if code is None:
            raise RoomNotFound(f"no room with code {raw_code.strip()[:16]!r}")
        return code


@lru_cache(maxsize=1)
def get_registry() -> RoomRegistry:
    """The process-wide registry, shared by the Socket.IO handlers and the REST routes."""
    return RoomRegistry(get_deck_library())
