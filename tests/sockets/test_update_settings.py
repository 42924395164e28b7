"""update_settings: the host changes the room's settings in the lobby (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from tests.sockets.support import LiveServer


async def test_host_updates_settings_in_the_lobby_and_everyone_sees_them(
    server: LiveServer, clients: Any
) -> None:
    ada, bo, cy = await clients(server, "Ada", "Bo", "Cy")
    await ada.create({"score_limit": 5, "submit_seconds": 60})
    await bo.join(ada.room_code)
    await cy.join(ada.room_code)
    ack = await ada.call("update_settings", {"settings": {"score_limit": 2, "hand_size": 5}})
    assert ack == {"ok": True}
    state = await bo.wait_for("room_state", lambda s: s["settings"]["score_limit"] == 2)
    # Fields not given keep their values.
    assert state["settings"]["hand_size"] == 5 and state["settings"]["submit_seconds"] == 60
    assert await ada.call("update_settings", {"settings": {"submit_seconds": None}}) == {"ok": True}
    state = await cy.wait_for("room_state", lambda s: s["settings"]["submit_seconds"] is None)
    assert state["settings"]["score_limit"] == 2
    assert (await ada.call("start_game"))["ok"]
    hand = await bo.wait_for("hand", lambda h: h["round"] == 1)
    assert len(hand["cards"]) in (5, 6, 7)  # hand_size 5, plus a pick-3 card's draw


async def test_update_settings_refusals_change_nothing(server: LiveServer, clients: Any) -> None:
    ada, bo, cy = await clients(server, "Ada", "Bo", "Cy")
    await ada.create({"score_limit": 5})
    await bo.join(ada.room_code)
    await cy.join(ada.room_code)
    refusals: list[tuple[Any, Any, str]] = [
        (bo, {"settings": {"score_limit": 3}}, "not_host"),
        (ada, {"settings": {"score_limit": 0}}, "invalid_payload"),
        (ada, {"settings": {"score_limit": "3"}}, "invalid_payload"),
        (ada, {"settings": {"colour": "red"}}, "invalid_payload"),
        (ada, {"score_limit": 3}, "invalid_payload"),
        (ada, {"settings": {"deck_ids": ["nope"]}}, "invalid_settings"),
    ]
    for client, payload, code in refusals:
        ack = await client.call("update_settings", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (payload, ack)
    assert await ada.call("update_settings", {"settings": {}}) == {"ok": True}
    latest = await ada.wait_for("room_state")
    assert latest["settings"]["score_limit"] == 5 and latest["settings"]["deck_ids"] == [
        "punchline-cc0"]
    # Below the players already seated: refused.
    dee, = await clients(server, "Dee")
    await dee.join(ada.room_code)
    ack = await ada.call("update_settings", {"settings": {"max_players": 3}})
    assert ack["error"]["code"] == "invalid_settings"
    assert (await ada.call("start_game"))["ok"]
    ack = await ada.call("update_settings", {"settings": {"score_limit": 3}})
    assert ack["error"]["code"] == "wrong_phase"
    state = await ada.wait_for("room_state", lambda s: s["phase"] == "submitting")
    assert state["settings"]["score_limit"] == 5 and state["settings"]["max_players"] == 10
