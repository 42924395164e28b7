"""The real server (`app.main:socket_app` in a subprocess, on the session's redis-server) against
a hostile client: the smoke test of the socket limits of issue 10 as the app wires them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from tests.e2e.conftest import ServerFactory
from tests.sockets.raw import RawSocket
from tests.sockets.support import Client, eventually
from tests.support.app_server import AppServer

pytestmark = pytest.mark.slow  # starts the real server


async def test_reserved_events_and_address_limits_on_the_real_server(
    app_server: ServerFactory, connect: Any, redis_url: str
) -> None:
    server = app_server(SOCKET_JOINS_PER_ADDRESS="3/minute", SOCKET_MAX_CONNECTIONS_PER_ADDRESS="3")
    raw = RawSocket(server.base_url)
    await raw.open()
    try:
        ack = await raw.call("connect", {}, {"token": "x"})
        assert ack["error"]["code"] == "unknown_event"
        codes = [(await raw.call("join_room", {"room_code": code, "name": "Mallory"}))
                 ["error"]["code"] for code in ("AAAAA", "CCCCC", "DDDDD", "EEEEE")]
        assert codes == ["room_not_found"] * 3 + ["too_many_joins"]
        # counted in Redis, where every instance sees it
        keys = redis.Redis.from_url(redis_url).keys("*limits*")
        assert keys, "no rate-limit key in Redis"
        # two more connections fit, the fourth from this address is refused
        await connect(server, "a")
        await connect(server, "b")
        refused = await connect(server, "c")
        error = await refused.wait_for("error")
        assert error["code"] == "too_many_connections"
        for _ in range(25):
            await raw.send('42["x",')
        await raw.wait_packet(lambda p: p == "1")
    finally:
        await raw.close()
    assert server.log.count("malformed packet from") == 1
    assert server.log.count("20 malformed packets within") == 1
    assert "Traceback" not in server.log



async def _admitted(connect: Any, server: AppServer, name: str) -> Client | None:
    """Connect with a stale seat token: an admitted connection hears `session_expired` (sent
    only after the count took it), a refused one `too_many_connections` before it is closed."""
    client: Client = await connect(server, name, token="stale")
    code = (await client.wait_for("error", timeout=10))["code"]
    assert code in ("session_expired", "too_many_connections"), code
    if code == "session_expired":
        return client
    await eventually(lambda: not client.sio.connected)
    return None


async def _admitted_within(connect: Any, server: AppServer, name: str, timeout: float) -> float:
    """Seconds until a connection to ``server`` is admitted (retried every 0.1 s)."""
    started = time.monotonic()
    while await _admitted(connect, server, name) is None:
        assert time.monotonic() - started < timeout, f"{name} still refused after {timeout} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_open_connections_are_counted_across_two_instances(
    app_server: ServerFactory, connect: Any, redis_url: str
) -> None:
    """Issue 10, item 3: the count lives in Redis, so two processes share one limit, and a
    SIGKILLed process's connections stop counting after SOCKET_CONNECTION_TTL_SECONDS."""
    limits = {"SOCKET_MAX_CONNECTIONS_PER_ADDRESS": "3", "SOCKET_CONNECTION_TTL_SECONDS": "2"}
    a, b = app_server(**limits), app_server(**limits)
    assert await _admitted(connect, a, "a1") and await _admitted(connect, a, "a2")
    b1 = await _admitted(connect, b, "b1")
    assert b1 is not None
    assert await _admitted(connect, a, "a3") is None  # 2 + 1 open: full on either instance
    assert await _admitted(connect, b, "b2") is None
    assert redis.Redis.from_url(redis_url).keys("punchline:conn:*"), "no count in Redis"
    await b1.close()  # one place frees up, for both instances
    await _admitted_within(connect, a, "a4", timeout=5)
    assert await _admitted(connect, b, "b3") is None
    a.process.kill()  # SIGKILL: no disconnect handler runs, nothing is removed
    a.process.wait()
    started = time.monotonic()
    for name in ("b4", "b5", "b6"):  # A's three expire (a4 maybe one beat after a1 and a2)
        await _admitted_within(connect, b, name, timeout=10)
    expired_after = time.monotonic() - started
    assert await _admitted(connect, b, "b7") is None  # B's own three: the limit still holds
    assert expired_after < 5, expired_after  # TTL 2 s, refreshed every 2/3 s
    print(f"A's connections stopped counting {expired_after:.2f} s after its SIGKILL")  # noqa: T201
