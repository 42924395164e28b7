from __future__ import annotations

import random

import pytest

from app.game.decks import DeckLibrary, load_library
from app.game.errors import InvalidName, InvalidSettings, RoomNotFound
from app.game.registry import RoomRegistry
from app.game.settings import RoomSettings
from tests.game.support import FakeClock, make_deck


def registry() -> RoomRegistry:
    return RoomRegistry(
        DeckLibrary([make_deck("big"), make_deck("tiny", white=10)]),
        rng=random.Random(1),
        clock=FakeClock(),
    )


def test_create_room_seats_the_host() -> None:
    reg = registry()
    room, host, events = reg.create_room("Ada", RoomSettings(deck_ids=("big",)))
    assert room.host_id == host.id and room.players == [host]
    assert reg.check_code(room.code.lower()) == room.code


def test_codes_are_unique() -> None:
    reg = registry()
    codes = {reg.create_room("Ada", RoomSettings(deck_ids=("big",)))[0].code for _ in range(50)}
    assert len(codes) == 50


def test_a_string_that_cannot_be_a_code_names_no_room() -> None:
    with pytest.raises(RoomNotFound):
        registry().check_code("not a code at all")


def test_unknown_deck() -> None:
    with pytest.raises(InvalidSettings, match="unknown deck 'nope'"):
        registry().create_room("Ada", RoomSettings(deck_ids=("nope",)))


def test_decks_too_small() -> None:
    with pytest.raises(InvalidSettings, match="too small"):
        registry().create_room("Ada", RoomSettings(deck_ids=("tiny",)))


def test_bad_host_name_creates_no_room() -> None:
    reg = registry()
    with pytest.raises(InvalidName):
        reg.create_room("", RoomSettings(deck_ids=("big",)))


def test_default_settings_work_with_the_builtin_deck() -> None:
    reg = RoomRegistry(load_library())
    room, host, _ = reg.create_room("Ada")
    room.add_player("Bo")
    room.add_player("Cy")
    room.start_game(host.id)
    assert room.phase == "submitting"
