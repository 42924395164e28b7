from __future__ import annotations

import pytest

from app.game import events as ev
from app.game.errors import (
    InvalidName,
    NameTaken,
    NotAllowed,
    NotHost,
    PlayerNotFound,
    RoomFull,
)
from app.game.players import name_key
from app.game.settings import RoomSettings
from tests.game.support import make_room, one


def test_first_player_is_host() -> None:
    room = make_room()
    player, events = room.add_player("Ada")
    assert room.host_id == player.id
    assert events == [ev.PlayerJoined(player.id, "Ada")]
    assert room.phase == "lobby"


def test_names_are_trimmed_and_collapsed() -> None:
    room = make_room()
    player, _ = room.add_player("  Ada   Lovelace ")
    assert player.name == "Ada Lovelace"


@pytest.mark.parametrize("taken", ["ada", "ADA", " Ada ", "aDa"])
def test_names_are_unique_case_insensitively(taken: str) -> None:
    room = make_room()
    room.add_player("Ada")
    with pytest.raises(NameTaken):
        room.add_player(taken)


@pytest.mark.parametrize("name", ["", "   ", "x" * 25, "bad\x00name", "zero\u200bwidth"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidName):
        make_room().add_player(name)


def test_name_of_max_length_is_fine() -> None:
    player, _ = make_room().add_player("x" * 24)
    assert player.name == "x" * 24


def test_room_full() -> None:
    room = make_room(3, settings=RoomSettings(max_players=3, deck_ids=("test",)))
    with pytest.raises(RoomFull):
        room.add_player("Late")


def test_player_ids_are_unique_and_opaque() -> None:
    room = make_room(10)
    ids = [p.id for p in room.players]
    assert len(set(ids)) == 10
    assert all(i.startswith("p_") and len(i) == 18 for i in ids)


def test_leave() -> None:
    room = make_room(3)
    leaver = room.players[1]
    events = room.remove(leaver.id)
    assert events == [ev.PlayerLeft(leaver.id, leaver.name, "left")]
    assert not room.has_player(leaver.id)
    with pytest.raises(PlayerNotFound):
        room.remove(leaver.id)


def test_host_leaving_passes_host_to_first_remaining_player() -> None:
    room = make_room(3)
    host, second, _ = room.players
    events = room.remove(host.id)
    assert room.host_id == second.id
    assert ev.HostChanged(second.id) in events


def test_last_player_leaving_empties_the_room() -> None:
    room = make_room(1)
    room.remove(room.players[0].id)
    assert room.is_empty and room.host_id is None


def test_name_is_free_again_after_leaving() -> None:
    room = make_room()
    player, _ = room.add_player("Ada")
    room.remove(player.id)
    room.add_player("ada")


def test_host_can_kick() -> None:
    room = make_room(3)
    host, target = room.players[0], room.players[2]
    events = room.kick(host.id, target.id)
    assert one(events, ev.PlayerLeft).reason == "kicked"
    assert not room.has_player(target.id)


def test_only_host_can_kick() -> None:
    room = make_room(3)
    with pytest.raises(NotHost):
        room.kick(room.players[1].id, room.players[2].id)


def test_host_cannot_kick_themselves() -> None:
    room = make_room(3)
    with pytest.raises(NotAllowed):
        room.kick(room.players[0].id, room.players[0].id)


def test_kick_unknown_player() -> None:
    room = make_room(3)
    with pytest.raises(PlayerNotFound):
        room.kick(room.players[0].id, "p_nobody")


def test_disconnect_and_reconnect_keep_the_seat() -> None:
    room = make_room(3)
    pid = room.players[1].id
    assert room.mark_disconnected(pid) == [ev.PlayerDisconnected(pid)]
    assert room.mark_disconnected(pid) == []  # idempotent
    assert room.has_player(pid) and not room.player(pid).connected
    assert room.mark_reconnected(pid) == [ev.PlayerReconnected(pid)]
    assert room.mark_reconnected(pid) == []
    assert room.player(pid).connected


def test_public_state_hides_hands() -> None:
    room = make_room(3)
    room.start_game(room.players[0].id)
    view = room.public_state()
    assert view.room_code == "ABCDE"
    assert view.phase == "submitting"
    assert [p.name for p in view.players] == ["Player 0", "Player 1", "Player 2"]
    assert not hasattr(view.players[0], "hand")
    assert view.players[0].is_host
    assert sum(p.is_czar for p in view.players) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("P0", "Р0"),  # Cyrillic Er
        ("P0", "Ρ0"),  # Greek Rho
        ("P0", "Ｐ0"),  # fullwidth
        ("Paul", "𝐏aul"),  # mathematical bold
        ("Ivan", "Іvan"),  # Cyrillic Byelorussian-Ukrainian I
        ("ada", "ADA"),
        ("Fiona", "ﬁona"),  # ligature
    ],
)
def test_look_alike_names_are_taken(first: str, second: str) -> None:
    room = make_room()
    room.add_player(first)
    with pytest.raises(NameTaken):
        room.add_player(second)
    assert [p.name for p in room.players] == [first]


@pytest.mark.parametrize(("first", "second"), [("Zoe", "Zoë"), ("Ada", "Adam"), ("Eva", "Éva")])
def test_different_names_are_not_folded_together(first: str, second: str) -> None:
    room = make_room()
    room.add_player(first)
    room.add_player(second)
    assert name_key(first) != name_key(second)
