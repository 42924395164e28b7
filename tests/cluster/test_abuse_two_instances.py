"""The abuse tests of issue 10 again, with two real instances on one Redis: per-address rates,
reserved events, the ghost-seat trick and open-connection counts hold across instances."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from tests.cluster.conftest import Instances
from tests.sockets.raw import RawSocket
from tests.sockets.support import Client

pytestmark = pytest.mark.slow  # two real instances each

TIMEOUT = 10.0


async def test_rates_and_reserved_events_hold_across_instances(
        instances: Instances, player: Any) -> None:
    a, b = instances(2, SOCKET_ROOMS_PER_ADDRESS="3/minute")
    on_a = [await player(a, f"A{i}") for i in range(2)]
    on_b = [await player(b, f"B{i}") for i in range(2)]
    for p in [*on_a, on_b[0]]:
        await p.create()  # three rooms from this address, on two instances
    refused = await on_b[1].call("create_room", {"name": "B1"})
    assert refused["ok"] is False and refused["error"]["code"] == "too_many_rooms"
    raw = RawSocket(b.base_url)
    await raw.open()
    try:
        for reserved in ("connect", "disconnect"):
            ack = await raw.call(reserved, {})
            assert ack["error"]["code"] == "unknown_event"
    finally:
        await raw.close()


async def test_a_seat_is_held_by_one_connection_whichever_instance_it_is_on(
        instances: Instances, player: Any) -> None:
    """The ghost-seat trick of issue 10, across instances: a fake disconnect changes nothing, and
    the same token on another instance takes the seat from the first connection."""
    a, b = instances(2)
    raw = RawSocket(a.base_url)
    await raw.open()
    try:
        created = await raw.call("create_room", {"name": "Ada"})
        token, code = created["token"], created["room_code"]
        await raw.emit("disconnect")  # a client event: refused, the seat stays
        again = await raw.call("create_room", {"name": "Ada"})
        assert again["error"]["code"] == "already_in_room"
        taker = Client(b.base_url, "Ada")
        await taker.connect(token=token)  # the same seat, from instance B
        await taker.wait_for("hand", timeout=TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while not any('"session_replaced"' in p for p in raw.packets):
            assert time.monotonic() < deadline, raw.packets[-5:]
            await asyncio.sleep(0.05)
        while "41" not in raw.packets:  # A disconnected the old connection from the namespace
            assert time.monotonic() < deadline, raw.packets[-5:]
            await asyncio.sleep(0.05)
        state = await taker.call("leave_room")
        assert state == {"ok": True}
        await taker.close()
        b_check = Client(b.base_url, "Zed")
        await b_check.connect()
        gone = await b_check.call("join_room", {"room_code": code, "name": "Zed"})
        assert gone["error"]["code"] == "room_not_found"  # no ghost room left behind
        await b_check.close()
    finally:
        await raw.close()


async def test_a_dead_instance_s_connections_stop_counting_within_seconds(
        instances: Instances, player: Any) -> None:
    """Open connections per address are released by the survivor when it finds the other
    instance dead (INSTANCE_TTL_SECONDS=2), long before their own 60 s TTL."""
    a, b = instances(2, SOCKET_MAX_CONNECTIONS_PER_ADDRESS="3",
                     SOCKET_CONNECTION_TTL_SECONDS="60")
    for name in ("a1", "a2"):
        await player(a, name)
    await player(b, "b1")
    full = Client(b.base_url, "b2")
    await full.connect()
    error = await full.wait_for("error", timeout=TIMEOUT)
    assert error["code"] == "too_many_connections"
    await full.close()
    a.process.kill()
    a.process.wait()
    killed = time.monotonic()
    while True:
        late = Client(b.base_url, "b3")
        await late.connect()
        await asyncio.sleep(0.3)
        refused = any(e["code"] == "too_many_connections" for e in late.all("error"))
        await late.close()
        if not refused:
            break
        assert time.monotonic() - killed < 8.0, "A's connections still count"
        await asyncio.sleep(0.5)


async def test_concurrent_creates_and_joins_give_a_connection_one_seat(
        instances: Instances, redis_url: str) -> None:
    """Two create_room and a join_room sent back to back by one connection, on Redis-backed
    rooms (where each waits on Redis, so they interleave): one seat, the others refused."""
    (a,) = instances(1)
    host = RawSocket(a.base_url)
    await host.open()
    code = (await host.call("create_room", {"name": "Ada"}))["room_code"]
    raw = RawSocket(a.base_url)
    await raw.open()
    try:
        acks = await asyncio.gather(raw.call("create_room", {"name": "Bo"}),
                                    raw.call("join_room", {"room_code": code, "name": "Bo"}),
                                    raw.call("create_room", {"name": "Bo"}))
        assert sum(1 for ack in acks if ack["ok"]) == 1, acks
        assert {ack["error"]["code"] for ack in acks if not ack["ok"]} == {"already_in_room"}
        rooms = redis.Redis.from_url(redis_url).keys("punchline:room:{*}")
        joined = next(ack for ack in acks if ack["ok"])
        assert len(rooms) == (1 if joined["room_code"] == code else 2)
    finally:
        await raw.close()
        await host.close()
