"""The Socket.IO client manager: emits reach clients on every instance through Redis pub/sub.

python-socketio's ``AsyncRedisManager`` delivers an emit to this instance's clients first and
then publishes it for the others. Two of its defaults do not suit a game that must go on through
a Redis outage, so this subclass changes them:

- publishing waits at most ``publish_timeout`` seconds, and after a failure stays quiet for a
  second (local clients still get every emit; one log line per outage, not one per emit);
- the listener resubscribes within a second of Redis coming back (the library's back-off grows
  to a minute).

With ``REDIS_URL=memory://``, or when Redis did not answer at start-up, there is no manager: the
server's own in-process one serves this instance's clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio

from app.cache.connection import mask_url

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class GameRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(self, url: str, *, channel: str, write_only: bool = False,
                 publish_timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        super().__init__(url, channel=channel, write_only=write_only, logger=logger,
                         redis_options={"socket_connect_timeout": connect_timeout,
                                        "health_check_interval": 10})
        self.publish_timeout = publish_timeout
        self.masked_url = mask_url(url)
        self._quiet_until = 0.0
        self._failing = False

    async def _publish(self, data: Any) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            return
        try:
            if not self.connected:  # type: ignore[has-type]
                self._redis_connect()
            await asyncio.wait_for(self.redis.publish(self.channel, self.json.dumps(data)),
                                   self.publish_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure: deliver locally only
            self.connected = False
            self._quiet_until = now + RECONNECT_SECONDS
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
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        if self.pubsub is not None:
            await self.pubsub.aclose()
        if self.redis is not None:
            await self.redis.aclose()
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


def client_manager(url: str, channel: str, *, write_only: bool = False
                   ) -> socketio.AsyncManager | None:
    """The manager for ``url`` (None for memory://: the server's in-process default).

    Render workers and other processes that only emit pass ``write_only=True``."""
    from app.cache.connection import is_memory_url

    if is_memory_url(url):
        return None
    return GameRedisManager(url, channel=channel, write_only=write_only)
