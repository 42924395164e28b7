"""Redis losing its data, as the index-healing tests need it: killed, then started empty."""

from __future__ import annotations

import os
import signal

import redis

from tests.support.redis_server import RedisServer


def kill_and_restart_empty(server: RedisServer) -> redis.Redis:
    """SIGKILL the server (no shutdown save; it runs without persistence anyway) and start a new,
    empty one on the same port. Returns a client of the new one."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.process = None
    server.start()
    client = server.client()
    assert client.dbsize() == 0
    return client
