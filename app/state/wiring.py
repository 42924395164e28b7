"""The game's shared state for one app: the room book, this instance's heartbeat, and the Redis
client they use. Built in-process; ``connect()`` (in the app's lifespan) moves it onto Redis.

- ``REDIS_URL=memory://``: rooms stay in this process (the embedded default), one instance.
- Redis answers at start-up: rooms, schedule and heartbeats in Redis; any number of instances.
- Redis does not answer at start-up: rooms stay in this process for its whole life, even when
  Redis comes back later (docs/game.md says so); restart the instance to share its rooms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from fastapi import Request
from redis.exceptions import RedisClusterException, RedisError

from app.cache.connection import async_client, is_memory_url, mask_url
from app.cache.replication import wait_ms_for
from app.core.config import Settings
from app.game.decks import DeckLibrary
from app.state.book import RoomBook
from app.state.instances import Instances, new_instance_id
from app.state.redis_store import RedisRoomStore
from app.state.store import MemoryRoomStore

logger = logging.getLogger(__name__)


class GameState:
    def __init__(self, settings: Settings, library: DeckLibrary, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.client: aioredis.Redis | None = None
        self.instances = Instances(None, new_instance_id(), ttl=settings.instance_ttl_seconds)
        self.book = RoomBook(MemoryRoomStore(), library,
                             grace=settings.reconnect_grace_seconds,
                             idle=settings.room_idle_seconds, alone=self.instances.alone,
                             clock=clock)

    @property
    def shared(self) -> bool:
        return self.client is not None

    async def connect(self) -> bool:
        """Use Redis for rooms if it answers now; True if it does."""
        url = self.settings.redis_url
        if is_memory_url(url):
            logger.info("Game state: in this process (REDIS_URL=memory://)")
            return False
        client = async_client(self.settings)  # any topology the cache supports
        try:
            await client.ping()
        except (RedisError, RedisClusterException, OSError) as exc:
            await client.aclose()
            logger.warning("Game state: Redis at %s did not answer (%s); rooms stay in this "
                           "process", mask_url(url), type(exc).__name__)
            return False
        self.client = client
        self.instances.client = client
        self.book.store = RedisRoomStore(client, wait_ms_for(self.settings))
        logger.info("Game state: shared in Redis at %s (instance %s)", mask_url(url),
                    self.instances.id)
        return True

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None


def game_state(request: Request) -> GameState:
    """FastAPI dependency: the app's game state."""
    state: GameState = request.app.state.game_state
    return state
