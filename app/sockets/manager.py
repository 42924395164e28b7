"""The Socket.IO client manager: emits reach clients on every instance through Redis pub/sub.

python-socketio's ``AsyncRedisManager`` delivers an emit to this instance's clients first and
then publishes it for the others. Two of its defaults do not suit a game that must go on through
a Redis outage, so this subclass changes them:

- an emit does not wait for Redis: its message joins an in-order queue that one sender task
  publishes in pipelines (one round trip for everything queued meanwhile), so a handler's emits
  cost no round trips and other instances get them in the order they were made;
- publishing waits at most ``publish_timeout`` seconds, and after a failure stays quiet for a
  second, dropping what is queued (local clients still get every emit; one log line per outage);
- the listener resubscribes within a second of Redis coming back (the library's back-off grows
  to a minute).

With ``REDIS_URL=memory://``, or when Redis did not answer at start-up, there is no manager: the
server's own in-process one serves this instance's clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import socketio

from app.cache.connection import mask_url
from app.core.config import Settings
from app.core.redis_url import parse_multi_host, topology_of

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
CONNECT_TIMEOUT = 0.5  # seconds, to Redis and to the sentinels
MAX_QUEUED = 10_000  # messages; past it (Redis far too slow) emits reach local clients only


class GameRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(self, url: str, *, channel: str, write_only: bool = False,
                 publish_timeout: float = 0.5, connect_timeout: float = CONNECT_TIMEOUT,
                 tls: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, channel=channel, write_only=write_only, logger=logger,
                         redis_options={"socket_connect_timeout": connect_timeout,
                                        "health_check_interval": 10, **(tls or {})})
        self.publish_timeout = publish_timeout
        self.masked_url = mask_url(url)
        self._quiet_until = 0.0
        self._failing = False
        self._outbox: list[str] = []  # messages waiting for the sender, in emit order
        self._sender: asyncio.Task[None] | None = None

    async def _publish(self, data: Any) -> None:
        if time.monotonic() < self._quiet_until or len(self._outbox) >= MAX_QUEUED:
            return
        self._outbox.append(self.json.dumps(data))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())

    async def _send_queued(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                if not self.connected:  # type: ignore[has-type]
                    self._redis_connect()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(self.channel, message)
                    await asyncio.wait_for(pipe.execute(), self.publish_timeout)
            except Exception as exc:  # noqa: BLE001 - any failure: deliver locally only
                self.connected = False
                self._quiet_until = time.monotonic() + RECONNECT_SECONDS
                self._outbox.clear()
                if not self._failing:
                    self._failing = True
                    logger.warning("Socket.IO: cannot publish to %s (%s); emits reach this "
                                   "instance's clients only until it answers",
                                   self.masked_url, type(exc).__name__)
                return
            if self._failing:
                self._failing = False
                logger.info("Socket.IO: publishing to %s again", self.masked_url)

    async def aclose(self) -> None:
        """Stop listening and close the Redis connections (the app's shutdown)."""
        if self._sender is not None:  # send what is queued, then stop
            await asyncio.gather(self._sender, return_exceptions=True)
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        if self.pubsub is not None:
            await self.pubsub.aclose()
        if self.redis is not None:
            await self.redis.aclose()
            # With Sentinel, the links to the sentinels belong to python-socketio's Sentinel
            # object, which the client's close leaves open.
            sentinels = getattr(self.redis.connection_pool, "sentinel_manager", None)
            if sentinels is not None:
                await sentinels.aclose()
        self.connected = False

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on anything
                logger.warning("Socket.IO: lost the subscription to %s (%s); retrying in %.0f s",
                               self.masked_url, type(exc).__name__, RECONNECT_SECONDS)
                subscribed = False
                await asyncio.sleep(RECONNECT_SECONDS)


def socketio_url(settings: Settings) -> str:
    """SOCKETIO_REDIS_URL when set, else REDIS_URL (see `pubsub_url` for a Cluster URL)."""
    return settings.socketio_redis_url or settings.redis_url


def pubsub_url(url: str) -> str:
    """A URL python-socketio accepts. It has no Cluster URL, and needs none: classic Pub/Sub
    is cluster-wide (a PUBLISH on any node reaches subscribers on every node), so a
    ``redis+cluster://`` URL becomes ``redis://`` on its first startup node, credentials kept
    (``rediss+cluster://`` becomes ``rediss://``). Should that node die, emits stay local until
    it is back: set SOCKETIO_REDIS_URL to choose."""
    if topology_of(url) != "cluster":
        return url
    address = parse_multi_host(url)
    host, port = address.nodes[0]
    userinfo = ""
    if address.username or address.password:
        userinfo = quote(address.username or "", safe="")
        if address.password is not None:
            userinfo += ":" + quote(address.password, safe="")
        userinfo += "@"
    host = f"[{host}]" if ":" in host else host
    return f"{'rediss' if address.tls else 'redis'}://{userinfo}{host}:{port}"


def client_manager(url: str, channel: str, *, write_only: bool = False,
                   tls: Mapping[str, Any] | None = None) -> socketio.AsyncManager | None:
    """The manager for ``url`` (None for memory://: the server's in-process default).

    Render workers and other processes that only emit pass ``write_only=True``. ``tls``:
    redis-py's ssl_* options (``connection.tls_options``: REDIS_TLS_*), used when the Pub/Sub
    URL is ``rediss://`` (python-socketio passes them to ``Redis.from_url``) or
    ``rediss+sentinel://``."""
    from app.cache.connection import is_memory_url

    if is_memory_url(url):
        return None
    url = shown = pubsub_url(url)
    options: dict[str, Any] | None = None
    if url.startswith("rediss://"):
        options = dict(tls or {})
    elif url.startswith("rediss+sentinel://"):
        # python-socketio knows redis+sentinel:// only: TLS goes in as redis-py options, for the
        # master's connections and (sentinel_kwargs) the sentinels'.
        url = "redis+sentinel://" + url.removeprefix("rediss+sentinel://")
        options = {"ssl": True, **(tls or {})}
        options["sentinel_kwargs"] = {**options, "socket_connect_timeout": CONNECT_TIMEOUT}
    manager = GameRedisManager(url, channel=channel, write_only=write_only, tls=options)
    manager.masked_url = mask_url(shown)  # rediss+sentinel:// stays so in the logs
    return manager
