"""Near-cache invalidation through Redis server-assisted client tracking (BCAST mode).

A subscriber connection listens on `__redis__:invalidate`; a tracker connection turns
`CLIENT TRACKING ON BCAST PREFIX video: REDIRECT <subscriber>` on. Redis then reports every
change of a `video:` key, by any client (another instance, `redis-cli DEL`, expiry,
eviction), within a round trip. The listener runs in a daemon thread, outside the event loop.
While it is down, the near cache serves nothing: reads go to Redis.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

from app.cache.connection import make_sync_client
from app.cache.core import CacheCore
from app.core.cards import KEY_PREFIX

logger = logging.getLogger(__name__)

INVALIDATE_CHANNEL = "__redis__:invalidate"
HEALTH_CHECK_SECONDS = 1.0
RETRY_CAP_SECONDS = 5.0


class InvalidationListener:
    def __init__(self, core: CacheCore) -> None:
        self.core = core
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.invalidations = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running or self.core.memory_only or not self.core.settings.cache_near_enabled:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cache-invalidation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None
        self.core.near_live = False

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self.core.redis_usable:
                self._stop.wait(0.05)
                continue
            try:
                self._listen()
                failures = 0
            except Exception as exc:  # the thread must outlive any error
                failures += 1
                if failures == 1:
                    logger.warning("Near-cache invalidation unavailable (%s); reads go to "
                                   "Redis until it is back", exc)
            finally:
                self._go_dark()
            # Back off while tracking cannot be set up (ACL, old server): no hot loop.
            self._stop.wait(min(RETRY_CAP_SECONDS, 0.1 * 2 ** min(failures, 8)))

    def _go_dark(self) -> None:
        self.core.near_live = False
        self.core.memory.mark_all_stale()
        self.core.invalidation_epoch += 1

    def _listen(self) -> None:
        name = f"punchline-inv-{uuid.uuid4().hex[:12]}"
        # RESP2: invalidations then arrive as ordinary pub/sub messages on the channel.
        subscriber = make_sync_client(self.core.settings, client_name=name, protocol=2)
        tracker = make_sync_client(self.core.settings, single_connection_client=True)
        pubsub = subscriber.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(INVALIDATE_CHANNEL)
            subscriber_id = self._client_id(tracker, name)
            tracker.execute_command(  # type: ignore[no-untyped-call]
                "CLIENT", "TRACKING", "ON", "REDIRECT", subscriber_id,
                "BCAST", "PREFIX", KEY_PREFIX)
            # Anything cached before tracking was on may be outdated.
            self._go_dark()
            self.core.near_live = True
            next_check = time.monotonic() + HEALTH_CHECK_SECONDS
            while not self._stop.is_set() and self.core.redis_usable:
                message = pubsub.get_message(timeout=0.2)
                if message is not None and message.get("type") == "message":
                    self._apply(message.get("data"))
                if time.monotonic() >= next_check:
                    tracker.ping()
                    pubsub.ping()
                    next_check = time.monotonic() + HEALTH_CHECK_SECONDS
        finally:
            pubsub.close()
            tracker.close()
            subscriber.close()

    @staticmethod
    def _client_id(tracker: redis.Redis, name: str) -> int:
        for client in tracker.client_list(_type="pubsub"):
            if client.get("name") == name:
                return int(client["id"])
        raise redis.ConnectionError("subscriber connection not found in CLIENT LIST")

    def _apply(self, data: object) -> None:
        self.core.invalidation_epoch += 1
        self.invalidations += 1
        if data is None:  # FLUSHALL / FLUSHDB
            self.core.memory.mark_all_stale()
            return
        if isinstance(data, list):
            for key in data:
                self.core.memory.mark_stale(key.decode() if isinstance(key, bytes) else str(key))
