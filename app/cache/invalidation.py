"""Near-cache invalidation through Redis server-assisted client tracking (BCAST mode).

A subscriber connection listens on `__redis__:invalidate`; a tracker connection turns
`CLIENT TRACKING ON BCAST PREFIX video: REDIRECT <subscriber>` on. Redis then reports every
change of a `video:` key, by any client (another instance, `redis-cli DEL`, expiry,
eviction), within a round trip. The listener runs in a daemon thread, outside the event loop.
While it is down, the near cache serves nothing: reads go to Redis.

Cluster: a node reports only changes of its own keys, so the listener keeps one subscriber and
one tracker on every primary. Tracking covers every `video:` key a primary holds, whatever its
slots, so a slot moving between known primaries needs nothing more (the source reports the
MIGRATE's delete, the target the key's arrival). Once a second it reads the slot map: when it
changed (MOVED, failover, resharding, a primary added) or any link fails, the listener goes
dark (every near entry stale) and sets tracking up again on the primaries of the new map.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis

from app.cache.connection import (
    cluster_address,
    cluster_node_client,
    cluster_nodes,
    make_sync_client,
)
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
        settings = self.core.settings
        links: list[_Link] = []
        cluster: redis.Redis | None = None
        try:
            if cluster_address(settings) is None:
                links.append(_Link(lambda **extra: make_sync_client(settings, **extra)))
                slot_map: object = None
            else:
                cluster = make_sync_client(settings)
                slot_map = _slot_map(cluster)
                for node in cluster_nodes(settings, cluster):
                    address = node.connection_pool.connection_kwargs
                    node.close()
                    links.append(_Link(lambda a=address, **extra: cluster_node_client(
                        settings, a["host"], a["port"], **extra)))
            for link in links:
                link.open()
            # Anything cached before tracking was on may be outdated.
            self._go_dark()
            self.core.near_live = True
            next_check = time.monotonic() + HEALTH_CHECK_SECONDS
            wait = 0.2 / len(links)
            while not self._stop.is_set() and self.core.redis_usable:
                for link in links:
                    message = link.pubsub.get_message(timeout=wait)
                    if message is not None and message.get("type") == "message":
                        self._apply(message.get("data"))
                if time.monotonic() >= next_check:
                    for link in links:
                        link.ping()
                    if cluster is not None and _slot_map(cluster) != slot_map:
                        logger.info("The cluster's slot map changed: near cache flushed, "
                                    "tracking set up again on its primaries")
                        return
                    next_check = time.monotonic() + HEALTH_CHECK_SECONDS
        finally:
            for link in links:
                link.close()
            if cluster is not None:
                cluster.close()


    def _apply(self, data: object) -> None:
        self.core.invalidation_epoch += 1
        self.invalidations += 1
        if data is None:  # FLUSHALL / FLUSHDB
            self.core.memory.mark_all_stale()
            return
        if isinstance(data, list):
            for key in data:
                self.core.memory.mark_stale(key.decode() if isinstance(key, bytes) else str(key))


def _slot_map(cluster: redis.Redis) -> object:
    """The cluster's slot ranges and their primaries, as a random node sees them now."""
    slots = cluster.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
    return sorted(str(item) for item in (slots.items() if isinstance(slots, dict) else slots))


class _Link:
    """Client tracking on one server: a RESP2 subscriber and a tracker redirecting to it."""

    def __init__(self, connect: Callable[..., redis.Redis]) -> None:
        self.name = f"punchline-inv-{uuid.uuid4().hex[:12]}"
        # RESP2: invalidations then arrive as ordinary pub/sub messages on the channel.
        self.subscriber = connect(client_name=self.name, protocol=2)
        self.tracker = connect(single_connection_client=True)
        self.pubsub = self.subscriber.pubsub(  # type: ignore[no-untyped-call]
            ignore_subscribe_messages=True)

    def open(self) -> None:
        self.pubsub.subscribe(INVALIDATE_CHANNEL)
        self.tracker.execute_command(  # type: ignore[no-untyped-call]
            "CLIENT", "TRACKING", "ON", "REDIRECT", self._subscriber_id(),
            "BCAST", "PREFIX", KEY_PREFIX)

    def _subscriber_id(self) -> int:
        for client in self.tracker.client_list(_type="pubsub"):
            if client.get("name") == self.name:
                return int(client["id"])
        raise redis.ConnectionError("subscriber connection not found in CLIENT LIST")

    def ping(self) -> None:
        self.tracker.ping()
        self.pubsub.ping()

    def close(self) -> None:
        self.pubsub.close()
        self.tracker.close()
        self.subscriber.close()
