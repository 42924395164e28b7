"""Helpers for the game tests: a fake clock, small decks, and rooms driven to a given point."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from app.game import events as ev
from app.game.cards import BlackCard, WhiteCard, default_draw
from app.game.decks import Deck
from app.game.room import Room
from app.game.settings import RoomSettings

E = TypeVar("E")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_deck(
    deck_id: str = "test",
    *,
    white: int = 200,
    picks: Sequence[int] = (1,) * 20,
) -> Deck:
    blacks = tuple(
        BlackCard(f"{deck_id}:b:{i}", f"Black {i} " + " ".join(["_"] * p), p, default_draw(p))
        for i, p in enumerate(picks)
    )
    whites = tuple(WhiteCard(f"{deck_id}:w:{i}", f"White {i}") for i in range(white))
    return Deck(deck_id, deck_id.title(), False, "", blacks, whites, "<test>")


def room_settings(**kwargs: object) -> RoomSettings:
    """Room settings that play from the ``make_deck()`` deck."""
    return RoomSettings(deck_ids=("test",), **kwargs)  # type: ignore[arg-type]


def make_room(
    n_players: int = 0,
    *,
    settings: RoomSettings | None = None,
    deck: Deck | None = None,
    clock: FakeClock | None = None,
    seed: int = 7,
) -> Room:
    room = Room(
        "ABCDE",
        settings if settings is not None else room_settings(),
        [deck if deck is not None else make_deck()],
        rng=random.Random(seed),
        clock=clock if clock is not None else FakeClock(),
    )
    for i in range(n_players):
        room.add_player(f"Player {i}")
    return room


def started(n_players: int = 4, **kwargs: object) -> Room:
    room = make_room(n_players, **kwargs)  # type: ignore[arg-type]
    room.start_game(room.players[0].id)
    return room


def czar(room: Room) -> str:
    assert room.round is not None
    return room.round.czar_id


def non_czars(room: Room) -> list[str]:
    return [p.id for p in room.players if p.id != czar(room)]


def play(room: Room, player_id: str) -> list[ev.Event]:
    """Submit the first ``pick`` cards of the player's hand."""
    assert room.round is not None
    cards = [c.id for c in room.hand(player_id)[: room.round.black.pick]]
    return room.submit(player_id, cards)


def play_all(room: Room) -> list[ev.Event]:
    events: list[ev.Event] = []
    assert room.round is not None
    for pid in sorted(room.round.participants):
        events += play(room, pid)
    return events


def of_type(events: Sequence[ev.Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def one(events: Sequence[ev.Event], kind: type[E]) -> E:
    found = of_type(events, kind)
    assert len(found) == 1, f"expected one {kind.__name__} in {events}"
    return found[0]
