"""End to end: real uvicorn, real python-socketio clients, a whole game and its mishaps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.cards import Combination
from tests.game.support import FakeClock
from tests.sockets.support import (
    Client,
    FakeVideoService,
    LiveServer,
    by_id,
    czar_and_others,
    dealt,
    eventually,
    of_round,
    play_first_round,
    round_state,
    start_round_one,
    submit_all,
    table,
)


async def test_full_game_to_the_score_limit(
    server: LiveServer, clients: Any, video: FakeVideoService
) -> None:
    players = await table(clients, server, 4, score_limit=2)
    host = players[0]
    ack = await host.call("start_game")
    assert ack == {"ok": True}
    czars = []
    rnd = 1
    while True:
        state = await round_state(host, rnd)
        czars.append(state["czar_id"])
        for p in players:  # every hand is private and full
            hand = await p.wait_for("hand", of_round(rnd))
            assert len(hand["cards"]) == dealt(state, p.player_id)
        await submit_all(players, state)
        czar = by_id(players, state["czar_id"])
        subs = await czar.wait_for("submissions", of_round(rnd))
        assert subs["black_card"] == state["black_card"]["text"]
        assert len(subs["submissions"]) == 3
        assert all(len(s["cards"]) == state["black_card"]["pick"] for s in subs["submissions"])
        assert all(
            p.player_id not in s["submission_id"] for s in subs["submissions"] for p in players
        )
        chosen = subs["submissions"][0]
        assert (await czar.call("pick_winner", {"submission_id": chosen["submission_id"]}))["ok"]
        won = await host.wait_for("round_won", of_round(rnd))
        assert won["black_card"] == state["black_card"]["text"]
        assert won["white_cards"] == chosen["cards"]
        assert won["winner"]["player_id"] != state["czar_id"]
        ready = await host.wait_for("video_ready", of_round(rnd))
        assert ready["black_card"] == won["black_card"]
        assert ready["white_cards"] == won["white_cards"]
        assert ready["video_url"].startswith("/videos/") and ready["video_url"].endswith(".mp4")
        if max(won["scores"].values()) >= 2:
            break
        rnd += 1
    over = await host.wait_for("game_over")
    assert over["scores"][over["winner"]["player_id"]] == 2
    final = await host.wait_for("room_state", lambda s: s["phase"] == "game_over")
    assert final["winner_id"] == over["winner"]["player_id"]
    seats = [p.player_id for p in players]
    assert czars == [seats[i % len(seats)] for i in range(len(czars))]
    # The winning combination was rendered permanently; every revealed one was counted and
    # rendered speculatively, as one Combination built once for both.
    permanent = [combo for combo, perm in video.created if perm]
    assert len(permanent) == rnd
    assert permanent[-1] == Combination(won["black_card"], won["white_cards"])
    speculative = [combo for combo, perm in video.created if not perm]
    assert len(video.plays) == len(speculative) == 3 * rnd
    assert sorted(map(id, video.plays)) == sorted(map(id, speculative))
    # The REST view agrees.
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(f"/api/rooms/{host.room_code}")
        assert r.status_code == 200
        assert r.json()["phase"] == "game_over"
        assert r.json()["scores"] == over["scores"]


async def test_reconnect_with_token_gets_seat_hand_and_score_back(
    server: LiveServer, clients: Any
) -> None:
    players = await table(clients, server, 3)
    host, bo, cy = players
    state = await start_round_one(players)
    hand = await bo.wait_for("hand", lambda h: h["round"] == 1)
    await bo.close()
    await host.wait_for(
        "room_state",
        lambda s: any(p["id"] == bo.player_id and not p["connected"] for p in s["players"]),
    )
    back: list[Client] = await clients(server)
    again = Client(server.url, "Bo again")
    await again.connect(token=bo.token)
    back.append(again)
    try:
        state2 = await again.wait_for("room_state", lambda s: s["round"] == 1)
        me = next(p for p in state2["players"] if p["id"] == bo.player_id)
        assert me["connected"] and me["score"] == 0 and me["name"] == "Bo"
        hand2 = await again.wait_for("hand")
        assert sorted(c["id"] for c in hand2["cards"]) == sorted(c["id"] for c in hand["cards"])
        # The seat works: Bo can play.
        if state["czar_id"] != bo.player_id:
            pick = state["black_card"]["pick"]
            ids = [c["id"] for c in hand2["cards"][:pick]]
            ack = await again.call("submit_cards", {"card_ids": ids})
            assert ack["ok"], ack
    finally:
        await again.close()


async def test_second_connection_with_the_same_token_replaces_the_first(
    server: LiveServer, clients: Any
) -> None:
    (ada,) = await table(clients, server, 1)
    twin = Client(server.url, "twin")
    await twin.connect(token=ada.token)
    try:
        err = await ada.wait_for("error")
        assert err["code"] == "session_replaced"
        await eventually(lambda: not ada.sio.connected)
        await twin.wait_for("room_state")
        ack = await twin.call("leave_room")
        assert ack == {"ok": True}
    finally:
        await twin.close()


async def test_player_dropped_past_grace_is_removed(make_server: Any, clients: Any) -> None:
    server = make_server(reconnect_grace_seconds=0.2)
    host, bo, cy, di = await table(clients, server, 4)
    await host.call("start_game")
    await bo.close()
    state = await host.wait_for(
        "room_state", lambda s: s["round"] >= 1 and bo.player_id not in s["scores"]
    )
    assert len(state["players"]) == 3
    late = Client(server.url, "late")
    await late.connect(token=bo.token)
    try:
        err = await late.wait_for("error")
        assert err["code"] == "session_expired"
        ack = await late.call("start_game")
        assert ack["error"]["code"] == "not_in_room"
    finally:
        await late.close()


async def test_player_leaving_mid_round_reveals_the_rest(server: LiveServer, clients: Any) -> None:
    players = await table(clients, server, 4)
    host = players[0]
    state = await start_round_one(players)
    czar, others = czar_and_others(players, state)
    await submit_all(others[:2], state)
    ack = await others[2].call("leave_room")
    assert ack == {"ok": True}
    subs = await czar.wait_for("submissions", lambda s: s["round"] == 1)
    assert len(subs["submissions"]) == 2
    state = await host.wait_for("room_state", lambda s: s["phase"] == "judging")
    assert others[2].player_id not in [p["id"] for p in state["players"]]
    # The leaver hears nothing more from the room, and is not in one any more.
    assert (await others[2].call("start_game"))["error"]["code"] == "not_in_room"


async def test_czar_leaving_voids_the_round_and_play_goes_on(
    server: LiveServer, clients: Any
) -> None:
    players = await table(clients, server, 4)
    state = await start_round_one(players)
    czar, others = czar_and_others(players, state)
    hands_before = {}
    for p in others:
        hands_before[p.player_id] = sorted(
            c["id"] for c in (await p.wait_for("hand", lambda h: h["round"] == 1))["cards"]
        )
    await submit_all(others[:1], state)
    assert (await czar.call("leave_room"))["ok"]
    watcher = others[-1]
    state2 = await round_state(watcher, 2)
    assert state2["czar_id"] != czar.player_id
    assert len(state2["players"]) == 3
    assert not watcher.all("round_won")
    assert watcher.all("round_ended") == [{"round": 1, "reason": "czar_left"}]
    for p in others:
        # Played cards came back and round 1's extra cards (pick 3) were put back; only round
        # 2's own extra cards are new.
        hand = await p.wait_for("hand", lambda h: h["round"] == 2)
        new = {c["id"] for c in hand["cards"]} - set(hands_before[p.player_id])
        extra = state2["black_card"]["draw"] if p.player_id != state2["czar_id"] else 0
        assert len(new) == extra
        assert len(hand["cards"]) == 10 + extra
    # and the new round can be played through
    await submit_all(others, state2)
    new_czar = by_id(others, state2["czar_id"])
    subs = await new_czar.wait_for("submissions", lambda s: s["round"] == 2)
    assert len(subs["submissions"]) == 2


async def test_falling_under_three_players_pauses_and_resumes(
    server: LiveServer, clients: Any
) -> None:
    host, bo, cy = await table(clients, server, 3)
    await host.call("start_game")
    await round_state(host, 1)
    await cy.call("leave_room")
    assert await bo.wait_for("round_ended") == {"round": 1, "reason": "not_enough_players"}
    paused = await bo.wait_for("game_paused")
    assert paused["reason"] == "not_enough_players"
    assert set(paused["scores"]) == {host.player_id, bo.player_id}
    state = await host.wait_for("room_state", lambda s: s["phase"] == "lobby" and s["round"] == 1)
    assert state["paused"] is True
    (di,) = await clients(server, "Di")
    await di.join(host.room_code)
    assert (await host.call("start_game"))["ok"]
    resumed = await bo.wait_for("game_resumed")
    assert set(resumed["scores"]) == {host.player_id, bo.player_id, di.player_id}
    state = await round_state(host, 2)
    assert state["paused"] is False


async def test_kick(server: LiveServer, clients: Any) -> None:
    host, bo, cy = await table(clients, server, 3)
    ack = await bo.call("kick_player", {"player_id": cy.player_id})
    assert ack["error"]["code"] == "not_host"
    ack = await host.call("kick_player", {"player_id": cy.player_id})
    assert ack == {"ok": True}
    err = await cy.wait_for("error")
    assert err["code"] == "kicked"
    state = await host.wait_for("room_state", lambda s: len(s["players"]) == 2)
    assert cy.player_id not in state["scores"]
    # Cy's token no longer opens the seat
    ghost = Client(server.url, "ghost")
    await ghost.connect(token=cy.token)
    try:
        assert (await ghost.wait_for("error"))["code"] == "session_expired"
    finally:
        await ghost.close()


async def test_host_leaving_passes_the_host(server: LiveServer, clients: Any) -> None:
    host, bo, cy = await table(clients, server, 3)
    await host.call("leave_room")
    state = await bo.wait_for("room_state", lambda s: len(s["players"]) == 2)
    assert state["host_id"] == bo.player_id


async def test_last_player_leaving_closes_the_room(server: LiveServer, clients: Any) -> None:
    (ada,) = await table(clients, server, 1)
    await ada.call("leave_room")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(f"/api/rooms/{ada.room_code}")
    assert r.status_code == 404
    assert "no such room" in r.text  # the REST error shape is tested in tests/api


async def test_video_failure_is_reported(make_server: Any, clients: Any) -> None:
    server = make_server(video_service=FakeVideoService(fail=True), speculative_render=False)
    players = await table(clients, server, 3, score_limit=5)
    host = players[0]
    await play_first_round(players, choice=1)
    failed = await host.wait_for("video_failed")
    assert failed["round"] == 1
    assert "renderer exploded" in failed["reason"]
    await round_state(host, 2)  # the game did not wait


async def test_no_video_service_reports_failure(make_server: Any, clients: Any) -> None:
    server = make_server(video_service=None)
    players = await table(clients, server, 3)
    host = players[0]
    await play_first_round(players)
    failed = await host.wait_for("video_failed")
    assert "unavailable" in failed["reason"]


@pytest.mark.slow
async def test_slow_video_never_blocks_the_game(make_server: Any, clients: Any) -> None:
    slow = FakeVideoService(delay=2.0)
    server = make_server(video_service=slow)
    players = await table(clients, server, 3)
    host = players[0]
    await play_first_round(players, timeout=1.0)
    await round_state(host, 2)
    assert not host.all("video_ready")
    ready = await host.wait_for("video_ready", timeout=5.0)
    assert ready["round"] == 1


async def test_rest_decks(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/api/decks")
    assert r.status_code == 200
    [deck] = r.json()["decks"]
    assert deck["id"] == "punchline-cc0"
    assert deck["black_cards"] >= 60 and deck["white_cards"] >= 300
    assert deck["pick_counts"]["2"] >= 8 and deck["pick_counts"]["3"] >= 3


async def test_rest_room_state_is_public(server: LiveServer, clients: Any) -> None:
    host, bo, cy = await table(clients, server, 3)
    await host.call("start_game")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(f"/api/rooms/{host.room_code.lower()}")
        missing = await http.get("/api/rooms/QQQQQ")
        junk = await http.get("/api/rooms/not-a-code")
    assert r.status_code == 200
    body = r.json()
    assert body["room_code"] == host.room_code
    assert body["phase"] == "submitting"
    assert {p["name"] for p in body["players"]} == {"Ada", "Bo", "Cy"}
    assert ":w:" not in r.text, "a white card id leaked"
    assert host.token not in r.text and '"token"' not in r.text
    assert missing.status_code == 404 and junk.status_code == 404


async def test_player_dropping_mid_round_does_not_hold_it_up(
    server: LiveServer, clients: Any
) -> None:
    players = await table(clients, server, 4)
    host = players[0]
    state = await start_round_one(players)
    czar, others = czar_and_others(players, state)
    await submit_all(others[:2], state)
    await others[2].close()
    subs = await czar.wait_for("submissions", lambda s: s["round"] == 1)
    assert len(subs["submissions"]) == 2
    judging = await round_state(host, 1, "judging")
    dropped = next(p for p in judging["players"] if p["id"] == others[2].player_id)
    assert dropped["connected"] is False  # the seat is kept for the grace period


async def test_round_timer_runs_on_the_server(make_server: Any, clients: Any) -> None:
    clock = FakeClock()
    server = make_server(clock=clock)
    players = await table(clients, server, 3, submit_seconds=30)
    host = players[0]
    state = await start_round_one(players)
    assert state["seconds_left"] == 30
    clock.advance(31)  # nobody played: the round is voided and the next one starts
    state = await round_state(host, 2)
    assert state["czar_id"] != players[0].player_id
    assert host.all("round_ended") == [{"round": 1, "reason": "submit_timeout"}]


async def test_judge_timer_ends_the_round_and_says_why(make_server: Any, clients: Any) -> None:
    clock = FakeClock()
    server = make_server(clock=clock)
    players = await table(clients, server, 3, judge_seconds=20)
    state = await start_round_one(players)
    await submit_all(players, state)
    await round_state(players[0], 1, "judging")
    clock.advance(21)
    assert await players[1].wait_for("round_ended") == {"round": 1, "reason": "judge_timeout"}
    await round_state(players[0], 2)


async def test_a_won_round_ends_with_round_won_then_round_ended(
    server: LiveServer, clients: Any
) -> None:
    players = await table(clients, server, 3)
    await play_first_round(players)
    watcher = players[1]
    await watcher.wait_for("round_ended")
    names = [name for name, _ in watcher.received if name in ("round_won", "round_ended")]
    assert names == ["round_won", "round_ended"]
    assert watcher.last("round_ended") == {"round": 1, "reason": "won"}


async def test_czar_reconnecting_while_judging_gets_the_submissions(
    server: LiveServer, clients: Any
) -> None:
    players = await table(clients, server, 4)
    state = await start_round_one(players)
    czar, others = czar_and_others(players, state)
    await czar.close()
    await submit_all(others, state)
    judging = await round_state(others[0], 1, "judging")
    back = Client(server.url, "czar again")
    await back.connect(token=czar.token)
    try:
        subs = await back.wait_for("submissions")
        assert subs["round"] == 1 and subs["submissions"] == judging["submissions"]
        assert (await back.wait_for("hand"))["round"] == 1
        state = await back.wait_for("room_state", lambda s: s["phase"] == "judging")
        sid = subs["submissions"][0]["submission_id"]
        assert (await back.call("pick_winner", {"submission_id": sid}))["ok"]
    finally:
        await back.close()
