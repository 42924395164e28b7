"""Bad input never changes anything and never crashes the server."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.game.room import Room
from tests.sockets.support import Client, LiveServer, czar_and_others
from tests.support.rooms import room_snapshot


def error_code(ack: dict[str, Any]) -> str:
    assert ack["ok"] is False, ack
    assert set(ack["error"]) == {"code", "message"}
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
    code: str = ack["error"]["code"]
    return code


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid_payload"),
        ("Ada", "invalid_payload"),
        (["Ada"], "invalid_payload"),
        (42, "invalid_payload"),
        ({}, "invalid_payload"),
        ({"name": 5}, "invalid_payload"),
        ({"name": "Ada", "extra": 1}, "invalid_payload"),
        ({"name": "x" * 10_000}, "invalid_payload"),
        ({"name": ""}, "invalid_name"),
        ({"name": "   "}, "invalid_name"),
        ({"name": "Ada", "settings": {"score_limit": 0}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"score_limit": "7"}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"max_players": 99}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"hand_size": 1}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"submit_seconds": 1}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"deck_ids": []}}, "invalid_payload"),
        ({"name": "Ada", "settings": {"deck_ids": ["nope"]}}, "invalid_settings"),
        ({"name": "Ada", "settings": {"deck_ids": ["a", "a"]}}, "invalid_settings"),
        ({"name": "Ada", "settings": "fast"}, "invalid_payload"),
    ],
)
async def test_bad_create_room(server: LiveServer, clients: Any, payload: Any, code: str) -> None:
    (c,) = await clients(server, "c")
    assert error_code(await c.call("create_room", payload)) == code
    assert server.room_count == 0
    assert (await c.call("start_game"))["error"]["code"] == "not_in_room"


async def test_bad_input_in_a_room_changes_nothing(server: LiveServer, clients: Any) -> None:
    host, bo, cy = await clients(server, "Ada", "Bo", "Cy")
    await host.create()
    await bo.join(host.room_code)
    await cy.join(host.room_code)
    assert (await host.call("start_game"))["ok"]
    state = await host.wait_for("room_state", lambda s: s["round"] == 1)
    czar, (player, other) = czar_and_others([host, bo, cy], state)
    hand = (await player.wait_for("hand", lambda h: h["round"] == 1))["cards"]
    other_hand = (await other.wait_for("hand", lambda h: h["round"] == 1))["cards"]
    before = await room_snapshot(server.url, host.room_code)

    cases: list[tuple[Client, str, Any, str]] = [
        (player, "submit_cards", None, "invalid_payload"),
        (player, "submit_cards", {"card_ids": []}, "invalid_payload"),
        (player, "submit_cards", {"card_ids": "abc"}, "invalid_payload"),
        (player, "submit_cards", {"card_ids": [1]}, "invalid_payload"),
        (player, "submit_cards", {"card_ids": ["x"] * 4}, "invalid_payload"),
        (player, "submit_cards", {"card_ids": ["nope:w:1"]}, "invalid_cards"),
        (player, "submit_cards", {"card_ids": [other_hand[0]["id"]]}, "invalid_cards"),
        (player, "submit_cards", {"card_ids": [hand[0]["id"]] * 2}, "invalid_cards"),
        (czar, "submit_cards", {"card_ids": [hand[0]["id"]]}, "not_allowed"),
        (player, "pick_winner", {"submission_id": "s0_x"}, "wrong_phase"),
        (czar, "pick_winner", {"submission_id": 7}, "invalid_payload"),
        (player, "start_game", None, "not_host"),
        (host, "start_game", None, "wrong_phase"),
        (host, "start_game", {"force": True}, "invalid_payload"),
        (player, "kick_player", {"player_id": czar.player_id}, "not_host"),
        (host, "kick_player", {"player_id": host.player_id}, "not_allowed"),
        (host, "kick_player", {"player_id": "p_nobody"}, "player_not_found"),
        (host, "kick_player", {}, "invalid_payload"),
        (player, "join_room", {"room_code": host.room_code, "name": "Twice"}, "already_in_room"),
        (player, "create_room", {"name": "Again"}, "already_in_room"),
        (player, "leave_room", {"now": True}, "invalid_payload"),
        (player, "no_such_event", {"x": 1}, "unknown_event"),
    ]
    for client, event, payload, code in cases:
        ack = await client.call(event, payload)
        assert error_code(ack) == code, (event, payload, ack)
    # several arguments in one event
    ack = await player.call("submit_cards", ({"card_ids": [hand[0]["id"]]}, "extra"))
    assert error_code(ack) == "invalid_payload"

    assert await room_snapshot(server.url, host.room_code) == before
    # and the room still works
    pick = state["black_card"]["pick"]
    ack = await player.call("submit_cards", {"card_ids": [c["id"] for c in hand[:pick]]})
    assert ack == {"ok": True}


async def test_join_errors(server: LiveServer, clients: Any) -> None:
    host, a, b = await clients(server, "Ada", "ada", "Bo")
    await host.create({"max_players": 3})
    assert error_code(await a.call("join_room", {"room_code": "QQQQQ", "name": "x"})) == (
        "room_not_found"
    )
    assert error_code(await a.call("join_room", {"room_code": "??", "name": "x"})) == (
        "room_not_found"
    )
    assert error_code(await a.call("join_room", {"room_code": 12345, "name": "x"})) == (
        "invalid_payload"
    )
    ack = await a.call("join_room", {"room_code": host.room_code, "name": " ADA "})
    assert error_code(ack) == "name_taken"
    await b.join(host.room_code)
    (c,) = await clients(server, "Cy")
    await c.join(host.room_code)
    (d,) = await clients(server, "Di")
    ack = await d.call("join_room", {"room_code": host.room_code, "name": "Di"})
    assert error_code(ack) == "room_full"


async def test_rate_limit(make_server: Any, clients: Any) -> None:
    server = make_server(socket_rate_limit_per_second=1.0, socket_rate_limit_burst=5)
    (c,) = await clients(server, "c")
    acks = [await c.call("start_game") for _ in range(12)]
    codes = [a["error"]["code"] for a in acks]
    assert codes[:5] == ["not_in_room"] * 5
    assert "rate_limited" in codes[5:]
    assert codes.count("rate_limited") >= 5


async def test_unexpected_exception_is_an_internal_error_and_is_logged(
    server: LiveServer, clients: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    host, bo, cy = await clients(server, "Ada", "Bo", "Cy")
    await host.create()
    await bo.join(host.room_code)
    await cy.join(host.room_code)

    def boom(self: Room, by: str) -> Any:
        raise RuntimeError("kaboom")

    with monkeypatch.context() as patch, caplog.at_level(logging.ERROR):
        patch.setattr(Room, "start_game", boom)
        ack = await host.call("start_game")
    assert error_code(ack) == "internal"
    assert "kaboom" not in ack["error"]["message"]
    records = [r for r in caplog.records
               if r.name == "app.sockets.server" and r.levelno >= logging.ERROR]
    assert records and records[0].exc_info is not None
    # the server survived and the room works
    assert (await host.call("start_game")) == {"ok": True}
