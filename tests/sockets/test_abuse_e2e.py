"""A hostile client against the wire (issue 10): raw Socket.IO frames on a real uvicorn.

Written against frames and events only, so that they keep passing when the socket layer is
restructured for several instances.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from tests.game.support import FakeClock
from tests.sockets.raw import RawSocket
from tests.sockets.support import (
    Client,
    LiveServer,
    eventually,
    start_round_one,
    submit_all,
    table,
)


async def room_exists(server: LiveServer, code: str) -> bool:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get(f"/api/rooms/{code}")
    return r.status_code == 200


# --- item 1: only the server decides connect and disconnect ----------------------------------


@pytest.mark.parametrize(
    "frame_args",
    [
        ["connect", {}],
        ["connect"],
        ["connect", {}, {"token": "x"}],
        ["disconnect"],
        ["disconnect", "client namespace disconnect"],
        ["connect_error", {}],
    ],
)
async def test_reserved_event_names_are_refused(server: LiveServer, frame_args: list[Any]) -> None:
    raw = RawSocket(server.url)
    await raw.open()
    try:
        ack = await raw.call(*frame_args)
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_event"
        # the connection is untouched: it still creates a room
        ack = await raw.call("create_room", {"name": "Ada"})
        assert ack["ok"] is True
    finally:
        await raw.close()


async def test_fake_connect_does_not_refill_the_rate_limit(make_server: Any) -> None:
    server = make_server(socket_rate_limit_per_second=1.0, socket_rate_limit_burst=10)
    raw = RawSocket(server.url)
    await raw.open()
    accepted = 0
    try:
        for i in range(60):
            if i % 5 == 0:
                await raw.emit("connect", {})  # refilled the bucket on the old main
            ack = await raw.call("join_room", {"room_code": "AAAAA", "name": f"n{i}"})
            accepted += ack["error"]["code"] != "rate_limited"
    finally:
        await raw.close()
    # the burst plus what 1 event/s refills while the loop runs; the old main accepted 60
    assert accepted <= 10 + 3, accepted


# --- item 2: one seat per connection, no ghosts -----------------------------------------------


async def test_fake_disconnect_and_connect_make_no_ghost_rooms(make_server: Any) -> None:
    """The repro of issue 10: disconnect, create_room, connect with the first token; repeat."""
    server = make_server(reconnect_grace_seconds=0.3)
    raw = RawSocket(server.url)
    await raw.open()
    first = await raw.call("create_room", {"name": "Ada"})
    token = first["token"]
    for _ in range(10):
        await raw.emit("disconnect")
        ack = await raw.call("create_room", {"name": "Ada"})
        assert ack["error"]["code"] == "already_in_room"
        await raw.emit("connect", {}, {"token": token})
    await raw.call("leave_room")  # flushes the events above
    assert server.room_count == 0
    # and with the room left open, closing the socket closes it after the grace period
    second = await raw.call("create_room", {"name": "Ada"})
    await raw.close()
    await eventually(lambda: server.room_count == 0, timeout=5)
    assert not await room_exists(server, second["room_code"])


async def test_rooms_nobody_attends_close_after_the_grace_period(
    make_server: Any, clients: Any
) -> None:
    server = make_server(reconnect_grace_seconds=0.3)
    players = await table(clients, server, 3)
    code = players[0].room_code
    for p in players:
        await p.close()
    await eventually(lambda: server.room_count == 0, timeout=5)
    assert not await room_exists(server, code)


async def test_idle_rooms_are_closed_and_players_told_why(make_server: Any, clients: Any) -> None:
    server = make_server(room_idle_seconds=0.5)
    host, bo, cy = await table(clients, server, 3)
    closed = await bo.wait_for("room_closed", timeout=5)
    assert closed["reason"] == "idle" and closed["room_code"] == host.room_code
    assert server.room_count == 0
    # their seats are gone, and the connection may start again
    ack = await bo.call("start_game")
    assert ack["error"]["code"] == "not_in_room"
    assert (await host.call("create_room", {"name": "Ada"}))["ok"]


async def test_round_timers_alone_do_not_keep_a_room_alive(
    make_server: Any, clients: Any
) -> None:
    clock = FakeClock()  # the rooms' clock: rounds time out as fast as we advance it
    server = make_server(clock=clock, room_idle_seconds=60)  # fake seconds, like the timers
    players = await table(clients, server, 3, submit_seconds=5)
    await start_round_one(players)
    for _ in range(60):  # nobody plays; every 0.05 s a round is voided and a new one starts
        if players[1].all("room_closed"):
            break
        clock.advance(6)
        await asyncio.sleep(0.05)
    closed = players[1].last("room_closed")  # closed while the timers kept running
    assert closed is not None and closed["reason"] == "idle"
    assert len(players[0].all("round_ended")) >= 3  # the timers did run


async def test_a_removed_player_gets_no_more_broadcasts(server: LiveServer, clients: Any) -> None:
    """On the old main a fake ``disconnect`` emptied the seat but left the connection in the
    room's channel, so after its removal it still heard everything."""
    host, bo, cy = await table(clients, server, 3)
    raw = RawSocket(server.url)
    await raw.open()
    try:
        joined = await raw.call("join_room", {"room_code": host.room_code, "name": "Mallory"})
        await raw.emit("disconnect")
        ack = await host.call("kick_player", {"player_id": joined["player_id"]})
        assert ack["ok"] is True
        await raw.wait_packet(lambda p: '"kicked"' in p)
        before = len(raw.events("room_state"))
        (di,) = await clients(server, "Di")
        await di.join(host.room_code)
        await host.wait_for("room_state", lambda s: len(s["players"]) == 4)
        # A barrier, not a sleep: that broadcast was queued before this ack on raw's socket,
        # so had raw still been in the channel it would have arrived first.
        await raw.call("barrier")
        assert len(raw.events("room_state")) == before
    finally:
        await raw.close()


# --- item 3: per-address limits ---------------------------------------------------------------


async def test_open_connections_per_address_are_counted(make_server: Any) -> None:
    server = make_server(socket_max_connections_per_address=2)
    a, b, c = Client(server.url, "a"), Client(server.url, "b"), Client(server.url, "c")
    await a.connect()
    await b.connect()
    try:
        await c.connect()
        await c.wait_for("error", lambda e: e["code"] == "too_many_connections")
        await eventually(lambda: not c.sio.connected)
        await a.close()
        # The server forgets a's connection a moment after the close; wait for that, not a time.
        await eventually(lambda: server.game.connections.count("127.0.0.1") == 1)
        d = Client(server.url, "d")
        await d.connect()
        assert (await d.call("create_room", {"name": "Di"}))["ok"]
        await d.close()
    finally:
        for client in (a, b, c):
            await client.close()


async def test_refused_connections_are_logged_once_a_minute(
    make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that kept connecting past its limit wrote one warning per refusal."""
    caplog.set_level(logging.INFO)
    server = make_server(socket_max_connections_per_address=1)
    keeper = RawSocket(server.url)
    await keeper.open()
    try:
        for _ in range(50):
            raw = RawSocket(server.url)
            await raw.open()
            await raw.wait_packet(lambda p: '"too_many_connections"' in p)
            await raw.close()
    finally:
        await keeper.close()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1, lines[:3]  # the first of the minute; the next line counts the rest
    assert "127.0.0.1" in lines[0] and "0 more refused" in lines[0]
    assert sum(len(r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING) < 1000


async def test_rooms_and_joins_per_address_are_limited_in_redis(
    make_server: Any, clients: Any, redis_url: str
) -> None:
    server = make_server(
        redis_url=redis_url,
        socket_rooms_per_address="2/minute",
        socket_joins_per_address="3/minute",
    )
    (ada,) = await clients(server, "Ada")
    for _ in range(2):
        assert (await ada.call("create_room", {"name": "Ada"}))["ok"]
        assert (await ada.call("leave_room"))["ok"]
    ack = await ada.call("create_room", {"name": "Ada"})
    assert ack["error"]["code"] == "too_many_rooms"
    assert "try again in" in ack["error"]["message"]
    # join attempts count, failed ones too: room-code guessing
    codes = [(await ada.call("join_room", {"room_code": c, "name": "Ada"}))["error"]["code"]
             for c in ("AAAAA", "CCCCC", "DDDDD", "EEEEE")]
    assert codes == ["room_not_found"] * 3 + ["too_many_joins"]


# --- item 6: bounded logs for malformed packets -----------------------------------------------


async def test_malformed_packets_are_logged_once_and_the_connection_closed(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = RawSocket(server.url)
    await raw.open()
    for _ in range(25):
        await raw.send('42["x",')  # 7 bytes; 3.3 KB of traceback each on the old main
    await asyncio.wait_for(raw.closed.wait(), 5)
    assert raw.packets[-1] == "1"  # Engine.IO close, sent by the server
    await raw.close()
    await eventually(lambda: not server.sio.eio.sockets)
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 2, lines  # the first of the minute, and the close
    assert "closing" in lines[1] and "20 malformed packets" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks
    assert sum(len(r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING) < 2000


# --- item 7: privacy --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["leave", "kick"])
async def test_submissions_stay_anonymous_through_leaves_and_kicks(
    server: LiveServer, clients: Any, how: str
) -> None:
    players = await table(clients, server, 4)
    host = players[0]
    state = await start_round_one(players)
    await submit_all(players, state)
    judging = await host.wait_for("room_state", lambda s: s["phase"] == "judging")
    leaver = next(p for p in players[1:] if p.player_id != state["czar_id"])
    if how == "leave":
        assert (await leaver.call("leave_room"))["ok"]
    else:
        assert (await host.call("kick_player", {"player_id": leaver.player_id}))["ok"]
    after = await host.wait_for("room_state", lambda s: len(s["players"]) == 3)
    assert after["phase"] == "judging"
    assert after["submissions"] == judging["submissions"]


async def test_look_alike_names_cannot_join(server: LiveServer, clients: Any) -> None:
    p0, fake = await clients(server, "P0", "Р0")  # the second is Cyrillic Er + zero
    await p0.create()
    ack = await fake.call("join_room", {"room_code": p0.room_code, "name": "Р0"})
    assert ack["error"]["code"] == "name_taken"

