"""Redis frozen (SIGSTOP) for 10 s in the middle of a round, with one instance and with two.

Alone, the instance plays on from its own copy and writes the room back when Redis answers: no
acknowledged move is lost. With two, moves are refused with ``service_degraded`` until Redis is
back (no split brain), and everyone keeps their seat."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Instances
from tests.cluster.test_instances import TIMEOUT, seat
from tests.sockets.support import Client, by_id, of_round, round_state
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow  # Redis is frozen for 10 s in each

FROZEN_SECONDS = 10.0


async def submit(p: Client, rnd: int, pick: int) -> dict[str, Any]:
    hand = await p.wait_for("hand", of_round(rnd), timeout=TIMEOUT)
    return await p.call("submit_cards", {"card_ids": [c["id"] for c in hand["cards"][:pick]]})


def stored_room(server: Any, code: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base_url}/api/rooms/{code}", timeout=5).json()
    return body


async def test_alone_the_instance_plays_through_and_writes_back(
        instances: Instances, player: Any, own_redis: RedisServer) -> None:
    (a,) = instances(1, redis=own_redis.url)
    players = await seat(player, [a], ["Ada", "Bo", "Cy"])
    await players[0].call("start_game")
    state = await round_state(players[0], 1)
    czar = by_id(players, state["czar_id"])
    others = [p for p in players if p is not czar]
    pick = state["black_card"]["pick"]
    own_redis.freeze()
    frozen = time.monotonic()
    try:
        for p in others:
            assert await submit(p, 1, pick) == {"ok": True}  # acknowledged while frozen
        subs = await czar.wait_for("submissions", timeout=TIMEOUT)
        chosen = subs["submissions"][0]["submission_id"]
        assert await czar.call("pick_winner", {"submission_id": chosen}) == {"ok": True}
        won = await others[0].wait_for("round_won", of_round(1), timeout=TIMEOUT)
        await asyncio.sleep(max(0.0, FROZEN_SECONDS - (time.monotonic() - frozen)))
    finally:
        own_redis.thaw()
    # Written back: a second instance started now loads the room from Redis, scores and all.
    (b,) = instances(1, redis=own_redis.url)
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = stored_room(b, players[0].room_code)
        if body.get("round") == 2:
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)
    scores = {p["id"]: p["score"] for p in body["players"]}
    assert scores == won["scores"] and sum(scores.values()) == 1
    state2 = await round_state(players[0], 2)  # and the game goes on
    czar2 = by_id(players, state2["czar_id"])
    other = next(p for p in players if p is not czar2)
    assert await submit(other, 2, state2["black_card"]["pick"]) == {"ok": True}


async def test_with_two_instances_moves_wait_for_redis_and_nothing_is_lost(
        instances: Instances, player: Any, own_redis: RedisServer) -> None:
    a, b = instances(2, redis=own_redis.url)
    players = await seat(player, [a, b], ["Ada", "Bo", "Cy"])
    await asyncio.sleep(1.5)  # a heartbeat each: they know of each other
    await players[0].call("start_game")
    state = await round_state(players[1], 1)
    czar = by_id(players, state["czar_id"])
    first, second = [p for p in players if p is not czar]
    pick = state["black_card"]["pick"]
    assert await submit(first, 1, pick) == {"ok": True}  # acknowledged before the outage
    own_redis.freeze()
    frozen = time.monotonic()
    try:
        refused = await submit(second, 1, pick)
        assert refused["ok"] is False and refused["error"]["code"] == "service_degraded"
        await asyncio.sleep(max(0.0, FROZEN_SECONDS - (time.monotonic() - frozen)))
    finally:
        own_redis.thaw()
    deadline = time.monotonic() + TIMEOUT
    while True:  # Redis is back: the same move goes through
        again = await submit(second, 1, pick)
        if again == {"ok": True}:
            break
        assert again["error"]["code"] == "service_degraded" and time.monotonic() < deadline
        await asyncio.sleep(0.3)
    subs = await czar.wait_for("submissions", timeout=TIMEOUT)
    assert len(subs["submissions"]) == 2  # the move acknowledged before the outage is there
    body = stored_room(a, players[0].room_code)
    assert all(p["connected"] for p in body["players"])  # everyone kept their seat
