"""A room survives the trip to plain data and back, in every phase, and plays on the same."""

from __future__ import annotations

import json
import random

import pytest

from app.game import events as ev
from app.game.decks import DeckLibrary
from app.game.room import Room
from app.game.snapshot import FORMAT, SnapshotError, room_from_data, room_to_data
from tests.game.support import FakeClock, czar, make_deck, make_room, one, play, play_all


def restored(room: Room, clock: FakeClock, seed: int = 3) -> Room:
    data = json.loads(json.dumps(room_to_data(room)))  # what a store keeps: JSON text
    return room_from_data(data, DeckLibrary([make_deck()]), rng=random.Random(seed), clock=clock)


def test_every_phase_round_trips_exactly() -> None:
    clock = FakeClock()
    room = make_room(4, clock=clock)
    seen = [room_to_data(room)]
    room.start_game(room.players[0].id)
    seen.append(room_to_data(room))
    assert room.round is not None
    first, *others = sorted(room.round.participants)
    play(room, first)
    seen.append(room_to_data(room))
    events = [e for pid in others for e in play(room, pid)]
    revealed = one(events, ev.SubmissionsRevealed)
    seen.append(room_to_data(room))
    room.pick_winner(czar(room), revealed.submissions[1].submission_id)
    seen.append(room_to_data(room))
    room.mark_disconnected(room.players[2].id)
    seen.append(room_to_data(room))
    for data in seen:
        back = room_from_data(json.loads(json.dumps(data)), DeckLibrary([make_deck()]),
                              clock=clock)
        assert room_to_data(back) == data


def test_a_restored_room_plays_on_like_the_original() -> None:
    """Same hands, same piles, same czar order: the next draws come out identical."""
    clock = FakeClock()
    room = make_room(3, clock=clock, settings=None)
    room.start_game(room.players[0].id)
    copy = restored(room, clock)
    for r in (room, copy):
        revealed = one(play_all(r), ev.SubmissionsRevealed)
        r.pick_winner(czar(r), revealed.submissions[0].submission_id)
    # Submission order and ids are shuffled by each room's own rng; everything dealt is equal.
    assert [p.hand for p in room.players] == [p.hand for p in copy.players]
    assert room.round is not None and copy.round is not None
    assert (room.round.black, room.round.czar_id) == (copy.round.black, copy.round.czar_id)
    assert room.scores() == copy.scores()


def test_deadlines_survive_and_fire_on_the_restored_room() -> None:
    clock = FakeClock()
    room = make_room(3, clock=clock)
    room.settings = type(room.settings)(deck_ids=room.settings.deck_ids, submit_seconds=30)
    room.start_game(room.players[0].id)
    copy = restored(room, clock)
    assert copy.round is not None and copy.round.deadline == clock.now + 30
    clock.advance(31)
    assert any(isinstance(e, ev.RoundVoided) for e in copy.tick())


def test_another_format_or_a_missing_card_is_refused() -> None:
    room = make_room(3)
    data = room_to_data(room)
    with pytest.raises(SnapshotError, match="format"):
        room_from_data({**data, "format": FORMAT + 1}, DeckLibrary([make_deck()]),
                       clock=FakeClock())
    data["players"][0]["hand"] = ["test:w:99999"]
    with pytest.raises(SnapshotError, match="in no loaded deck"):
        room_from_data(data, DeckLibrary([make_deck()]), clock=FakeClock())
    with pytest.raises(SnapshotError, match="malformed"):
        room_from_data({"format": FORMAT}, DeckLibrary([make_deck()]), clock=FakeClock())
