"""Any instance serves any player: rooms, hands and events cross real processes through Redis,
and a SIGKILLed instance's players play on elsewhere with their tokens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Instances
from tests.sockets.support import Client, by_id, dealt, of_round, round_state, submit_all

pytestmark = pytest.mark.slow  # each test starts two or three real instances

TIMEOUT = 10.0


async def seat(player: Any, servers: list[Any], names: list[str], **settings: Any
               ) -> list[Client]:
    """One player per name, the i-th connected to ``servers[i % len]``, all in one room."""
    players = [await player(servers[i % len(servers)], name) for i, name in enumerate(names)]
    await players[0].create(settings or None)
    for p in players[1:]:
        await p.join(players[0].room_code)
    await players[0].wait_for("room_state", lambda s: len(s["players"]) == len(names),
                              timeout=TIMEOUT)
    return players


async def test_a_room_made_on_one_instance_is_played_from_the_others(
        instances: Instances, player: Any) -> None:
    servers = instances(2)
    ada, bo, cy = await seat(player, servers, ["Ada", "Bo", "Cy"])  # A, B, A
    rest = httpx.get(f"{servers[1].base_url}/api/rooms/{ada.room_code}")
    assert rest.status_code == 200 and len(rest.json()["players"]) == 3  # B sees A's room
    await ada.call("start_game")
    state = await round_state(bo, 1)  # emitted on A, received by a client of B
    await submit_all([ada, bo, cy], state)
    czar = by_id([ada, bo, cy], state["czar_id"])
    subs = await czar.wait_for("submissions", timeout=TIMEOUT)
    chosen = subs["submissions"][0]["submission_id"]
    pick = await czar.call("pick_winner", {"submission_id": chosen})
    assert pick == {"ok": True}
    state = await round_state(bo, 2)
    for p in (ada, bo, cy):
        won = await p.wait_for("round_won", of_round(1), timeout=TIMEOUT)
        hand = await p.wait_for("hand", of_round(2), timeout=TIMEOUT)  # to one player, any host
        assert len(hand["cards"]) == dealt(state, p.player_id)
    assert sum(won["scores"].values()) == 1


async def test_a_killed_instance_s_players_play_on_from_another(
        instances: Instances, player: Any) -> None:
    """SIGKILL the instance that holds two seats and armed the submit timer: its players come
    back through the other instance with their tokens, scores intact; the timer fires once; the
    dead instance's seats are marked disconnected by the survivors (no ghost)."""
    a, b, c = instances(3)
    ada, bo, cy = await seat(player, [a, b, c], ["Ada", "Bo", "Cy"], submit_seconds=6)
    watcher = await player(b, "")  # not seated: only reads the room over REST
    await ada.call("start_game")  # A arms the round-1 timer
    await round_state(bo, 1)
    a.process.kill()  # SIGKILL: no disconnect, no clean-up
    a.process.wait()
    killed = time.monotonic()
    back = Client(b.base_url, "Ada")
    await back.connect(token=ada.token)  # the client's reconnect, through another instance
    state = await back.wait_for("room_state", timeout=TIMEOUT)
    hand = await back.wait_for("hand", timeout=TIMEOUT)
    took = time.monotonic() - killed
    assert took < 2.0, f"room_state after {took:.2f} s"
    assert state["round"] == 1 and len(hand["cards"]) == dealt(state, ada.player_id)
    # Nobody submits: the timer A armed fires once (B or C claims it), voiding round 1.
    ended = await bo.wait_for("round_ended", of_round(1), timeout=TIMEOUT)
    assert ended["reason"] == "submit_timeout"
    await bo.wait_for("room_state", of_round(2), timeout=TIMEOUT)
    await asyncio.sleep(1.0)
    for p in (back, bo, cy):
        assert len([e for e in p.all("round_ended") if e["round"] == 1]) == 1
    await back.close()
    del watcher


async def test_a_dead_instance_s_seats_go_disconnected_within_seconds(
        instances: Instances, player: Any) -> None:
    a, b = instances(2)
    ada, bo, cy = await seat(player, [a, b], ["Ada", "Bo", "Cy"])  # Ada and Cy on A
    a.process.kill()
    a.process.wait()
    killed = time.monotonic()

    def connected() -> dict[str, bool]:
        body = httpx.get(f"{b.base_url}/api/rooms/{bo.room_code}").json()
        return {p["name"]: p["connected"] for p in body["players"]}

    while connected() != {"Ada": False, "Bo": True, "Cy": False}:
        assert time.monotonic() - killed < 8.0, connected()
        await asyncio.sleep(0.2)


async def test_a_room_whose_instance_died_is_reaped_by_another(
        instances: Instances, player: Any) -> None:
    """Nobody comes back: the survivor marks the seats disconnected, lets the grace period run
    out and closes the room; its keys leave Redis."""
    a, b = instances(2, RECONNECT_GRACE_SECONDS="2")
    ada, _bo, _cy = await seat(player, [a], ["Ada", "Bo", "Cy"])  # everyone on A
    code = ada.room_code
    a.process.kill()
    a.process.wait()
    killed = time.monotonic()
    while httpx.get(f"{b.base_url}/api/rooms/{code}").status_code != 404:
        assert time.monotonic() - killed < 15.0, "the room is still there"
        await asyncio.sleep(0.3)
