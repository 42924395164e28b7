"""The real server (`app.main:socket_app` in a subprocess, on the session's redis-server) against
a hostile client: the smoke test of the socket limits of issue 10 as the app wires them."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.e2e.conftest import ServerFactory
from tests.sockets.raw import RawSocket

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
