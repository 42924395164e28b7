"""Permanent entries survive a failover: each waits for one replica (`WAIT 1 <ms>`).

The outage journal only holds writes made while Redis was unreachable. A write the primary
acknowledged but had not yet passed on to a replica dies with that primary when a replica is
promoted (Sentinel). So a permanent entry is written with `SET` and `WAIT 1 <ms>` in one
pipeline (one connection: WAIT covers the writes of its own connection only; and one round
trip). Temporary entries are not waited for: losing one costs a re-render at worst.

"On by default when replicas exist": the primary's `INFO replication` is read at most once a
second, for its replica count and its replication id (which names the primary: a promoted
replica takes a new one). A primary without replicas gets a plain SET, as before.

A permanent write that no replica confirmed in time is not an error: it stays readable, and it
is *held* in memory. So is every permanent write made while the primary we last saw with
replicas has none (its replica was just promoted away: a failover is under way) and that
reached that primary: such a write is sent with `INFO replication` on the same connection, which
names the server that took it (pooled links to the old and the new master coexist for a while,
so our last look may describe another server). Writes that reached a new primary without a
replica yet are not held, as on any primary without replicas. While suspect, the primary is
looked at (and the sentinels asked for the master) every 0.1 s instead of every second, so
writes stop going to the old primary within 0.1 s of the sentinels switching: the hold then
only covers the promotion (about a second of writes), far inside MAX_HELD. The background
probe re-writes held entries (never over a newer value, see `replay.py`) with a WAIT until a
replica confirms them, and once onto any new primary even before it has a replica, so an entry
survives its first primary dying for good. The hold is bounded (MAX_HELD, oldest dropped with a
warning) and in memory: a process that dies while holding writes loses them, as it would
without this module.

Cluster: WAIT is sent to the primary of the key's slot, on the connection that carried the SET
(the cluster pipeline sends one node's commands on one connection); a batch of re-writes waits
on each primary it touched and counts as confirmed when every one of them confirmed. The
replica count is the smallest among the primaries, and the "replication id" joins theirs. A
write cannot ask which primary took it there (INFO would go to another node): while suspect,
that joined view decides whether it is held.

REDIS_WAIT_MS=0 turns it off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

from app.cache.connection import is_cluster
from app.cache.entry import CacheEntry
from app.cache.errors import CacheBackendError
from app.cache.journal import JournalRecord
from app.cache.plans import Plan, RedisStep, Set
from app.cache.replay import REPLAY_SCRIPT, replay_arguments
from app.core.config import Settings
from app.core.redis_url import topology_of

logger = logging.getLogger(__name__)

ROLE_CHECK_SECONDS = 1.0
SUSPECT_CHECK_SECONDS = 0.1  # while the primary we saw with replicas has none: a failover?
MAX_HELD = 10_000
REDRIVE_BATCH = 500


@dataclass(slots=True)
class Replication(RedisStep[tuple[int, str]]):
    """(connected replicas, replication id) of the server we talk to; (0, "") if no primary.

    When that server is `suspect` (the primary we last saw with replicas) and has none left, a
    Sentinel client asks the sentinels for the master now: redis-py re-asks only for new
    connections, so without this, pooled connections keep writing to a primary that a failover
    has already replaced, until the sentinels demote it (seconds later). If the sentinels name
    a new master, the answer is then read again from it: the caller must not go on believing
    in the old one for another check interval (its writes would be held for nothing).
    """

    suspect: str = ""

    def sync(self, client: redis.Redis) -> tuple[int, str]:
        if is_cluster(client):
            return _cluster_replication(client.info("replication", target_nodes="primaries"))
        found = _replication(client.info("replication"))
        pool = client.connection_pool
        if self._lost_replicas(found) and isinstance(pool, redis.sentinel.SentinelConnectionPool):
            pool.get_master_address()  # type: ignore[no-untyped-call]  # drops stale links
            # The link that read INFO is dropped on release if the master moved (the sync
            # pool checks `owns_connection`), so this reads the master the sentinels name.
            found = _replication(client.info("replication"))
        return found

    async def aio(self, client: aioredis.Redis) -> tuple[int, str]:
        if is_cluster(client):
            return _cluster_replication(await client.info(
                "replication", target_nodes="primaries"))
        found = _replication(await client.info("replication"))
        pool = client.connection_pool
        if self._lost_replicas(found) and isinstance(pool, aiosentinel.SentinelConnectionPool):
            await pool.get_master_address()  # type: ignore[no-untyped-call]
            await _drop_stale_links(pool)
            found = _replication(await client.info("replication"))
        return found

    def _lost_replicas(self, found: tuple[int, str]) -> bool:
        return found[0] == 0 and bool(self.suspect) and found[1] in {self.suspect, ""}


async def _drop_stale_links(pool: aiosentinel.SentinelConnectionPool) -> None:
    """Disconnect idle links to a server other than the master the sentinels name.

    The asyncio pool takes links back as they are (unlike the sync one, it never checks
    `owns_connection`), so a link that was busy when the master moved would go on writing to
    the old one until it is demoted. A disconnected link re-asks the sentinels on reconnect.
    """
    master = pool.master_address
    for link in list(pool._available_connections):  # noqa: SLF001  # no public way
        if master is not None and (getattr(link, "host", None), getattr(link, "port", None)) \
                != tuple(master):
            await link.disconnect()


def _replication(info: dict[str, Any]) -> tuple[int, str]:
    if info.get("role") != "master":
        return 0, ""
    return int(info.get("connected_slaves", 0)), str(info.get("master_replid", ""))


def _cluster_replication(by_node: Any) -> tuple[int, str]:
    """INFO replication of every primary (a dict per node name): the fewest replicas, and the
    primaries' replication ids joined (a failover anywhere changes it)."""
    found = [_replication(info) for info in dict(by_node).values()]
    if not found:
        return 0, ""
    return min(count for count, _ in found), ",".join(sorted(replid for _, replid in found))


def wait_ms_for(settings: Settings) -> int:
    """REDIS_WAIT_MS, kept well inside the socket timeout: a longer WAIT would read as an
    outage."""
    return min(settings.redis_wait_ms, int(settings.redis_socket_timeout * 800))


class ReplicaView:
    """What we last saw of our primary's replicas: read at most once a second, every 0.1 s while
    `suspect` (every write until we move to the new master lands on the old one)."""

    def __init__(self) -> None:
        self.replicas = 0
        self.primary = ""  # replication id of the primary we talk to
        self.replicated_primary = ""  # the last primary seen with replicas
        self.checked_at = -1e9

    @property
    def suspect(self) -> bool:
        """The primary we last saw with replicas has none: a failover may be under way."""
        return self.replicas == 0 and self.primary in {self.replicated_primary} - {""}

    @property
    def stale(self) -> bool:
        interval = SUSPECT_CHECK_SECONDS if self.suspect else ROLE_CHECK_SECONDS
        return time.monotonic() - self.checked_at >= interval

    def plan_refresh(self) -> Plan[None]:
        if self.stale:
            self.seen((yield from Replication(self.replicated_primary)))

    def seen(self, found: tuple[int, str]) -> None:
        self.replicas, self.primary = found
        if self.replicas:
            self.replicated_primary = self.primary
        self.checked_at = time.monotonic()

    def look_again(self) -> None:
        """Read the replicas again before the next write (one did not confirm in time)."""
        self.checked_at = -1e9

    def took_at_risk(self, took: tuple[int, str] | None) -> bool:
        """A write sent while our primary had no replica: could a failover lose it? `took` is
        what the server that took it said of itself (None on Cluster, where the joined view
        decides). At risk: the old primary (the last one seen with replicas), or a primary
        with replicas again (the write was not waited for)."""
        if took is None:
            return self.primary == self.replicated_primary
        at_risk = took[0] > 0 or took[1] in {self.replicated_primary, ""}
        if took != (self.replicas, self.primary):
            self.seen(took)
        return at_risk


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """A Lua script on its keys, for a pipeline: EVAL with the text, because a promoted replica
    may not have it cached and redis-py's cluster pipeline takes no `Script`."""

    script: str
    keys: tuple[str, ...]
    args: tuple[str | int, ...]

    @property
    def command(self) -> tuple[str | int, ...]:
        return ("EVAL", self.script, len(self.keys), *self.keys, *self.args)

    def queue(self, pipe: Any) -> None:
        pipe.execute_command(*self.command)


def _queue_wait(client: Any, pipe: Any, keys: Sequence[str], wait_ms: int) -> list[Any] | None:
    """Queue WAIT 1 <ms> after the writes of `keys`; on Cluster one per primary they went to
    (the list of those nodes), elsewhere one WAIT (None)."""
    if not is_cluster(client):
        pipe.wait(1, wait_ms)
        return None
    nodes = {node.name: node for node in (client.get_node_from_key(key) for key in keys)}
    for node in nodes.values():
        pipe.execute_command("WAIT", 1, wait_ms, target_nodes=node)
    return list(nodes.values())


def _acked(replies: list[Any], waits: list[Any] | None) -> int:
    """Replicas that confirmed: the last WAIT's reply, or the fewest among a cluster's WAITs."""
    count = 1 if waits is None else len(waits)
    return min(int(reply) for reply in replies[-count:]) if replies and count else 0


@dataclass(slots=True)
class SetAndWait(RedisStep[int]):
    """SET then WAIT 1 <ms> on the same connection; returns how many replicas confirmed."""

    key: str
    value: bytes
    wait_ms: int

    def sync(self, client: redis.Redis) -> int:
        with client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, self.value)
            waits = _queue_wait(client, pipe, (self.key,), self.wait_ms)
            return _acked(pipe.execute(), waits)

    async def aio(self, client: aioredis.Redis) -> int:
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, self.value)
            waits = _queue_wait(client, pipe, (self.key,), self.wait_ms)
            return _acked(await pipe.execute(), waits)


@dataclass(slots=True)
class SetAndInspect(RedisStep[tuple[int, str] | None]):
    """SET then INFO replication on the same connection: (replicas, replication id) of the very
    server that took the write, whichever one a pooled link reached (see `plan_set`).

    On Cluster only the SET (the key's primary is known, INFO would go elsewhere): None.
    """

    key: str
    value: bytes

    def sync(self, client: redis.Redis) -> tuple[int, str] | None:
        if is_cluster(client):
            client.set(self.key, self.value)
            return None
        with client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, self.value)
            pipe.info("replication")
            return _replication(pipe.execute()[-1])

    async def aio(self, client: aioredis.Redis) -> tuple[int, str] | None:
        if is_cluster(client):
            await client.set(self.key, self.value)
            return None
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self.key, self.value)
            pipe.info("replication")
            return _replication((await pipe.execute())[-1])


@dataclass(slots=True)
class ScriptAndWait(RedisStep[tuple[Any, int]]):
    """A script, then WAIT 1 <ms> on the same connection: (its reply, replicas that confirmed).
    """

    call: ScriptCall
    wait_ms: int

    def sync(self, client: redis.Redis) -> tuple[Any, int]:
        with client.pipeline(transaction=False) as pipe:
            self.call.queue(pipe)
            waits = _queue_wait(client, pipe, self.call.keys[:1], self.wait_ms)
            replies = pipe.execute()
        return replies[0], _acked(replies, waits)

    async def aio(self, client: aioredis.Redis) -> tuple[Any, int]:
        async with client.pipeline(transaction=False) as pipe:
            self.call.queue(pipe)
            waits = _queue_wait(client, pipe, self.call.keys[:1], self.wait_ms)
            replies = await pipe.execute()
        return replies[0], _acked(replies, waits)


@dataclass(slots=True)
class ScriptAndInspect(RedisStep[tuple[Any, tuple[int, str] | None]]):
    """A script then INFO replication on the same connection, as `SetAndInspect`: (its reply,
    (replicas, replication id) of the server that ran it, or None on Cluster)."""

    call: ScriptCall

    def sync(self, client: redis.Redis) -> tuple[Any, tuple[int, str] | None]:
        if is_cluster(client):
            return client.execute_command(*self.call.command), None  # type: ignore[no-untyped-call]
        with client.pipeline(transaction=False) as pipe:
            self.call.queue(pipe)
            pipe.info("replication")
            replies = pipe.execute()
        return replies[0], _replication(replies[-1])

    async def aio(self, client: aioredis.Redis) -> tuple[Any, tuple[int, str] | None]:
        if is_cluster(client):
            return (await client.execute_command(  # type: ignore[no-untyped-call]
                *self.call.command)), None
        async with client.pipeline(transaction=False) as pipe:
            self.call.queue(pipe)
            pipe.info("replication")
            replies = await pipe.execute()
        return replies[0], _replication(replies[-1])


@dataclass(slots=True)
class ReplayAndWait(RedisStep[int]):
    """Re-write held writes (scripts that never overwrite newer values), then WAIT 1 <ms>, in
    one pipeline.

    Without `wait_ms` (no replica to wait for) it only re-writes, and returns 0.
    """

    records: Sequence[ScriptCall]
    wait_ms: int | None

    def sync(self, client: redis.Redis) -> int:
        with client.pipeline(transaction=False) as pipe:
            for call in self.records:
                call.queue(pipe)
            if self.wait_ms is None:
                pipe.execute()
                return 0
            waits = _queue_wait(client, pipe, [c.keys[0] for c in self.records], self.wait_ms)
            return _acked(pipe.execute(), waits)

    async def aio(self, client: aioredis.Redis) -> int:
        async with client.pipeline(transaction=False) as pipe:
            for call in self.records:
                call.queue(pipe)
            if self.wait_ms is None:
                await pipe.execute()
                return 0
            waits = _queue_wait(client, pipe, [c.keys[0] for c in self.records], self.wait_ms)
            return _acked(await pipe.execute(), waits)


@dataclass(slots=True)
class RedriveOnCluster(RedisStep[list[str]]):
    """Cluster: re-write held entries, then WAIT on each primary they went to that has a
    replica; returns the keys a replica confirmed. Primaries without a replica (one was just
    promoted and has none yet) get the re-write only: their keys stay held.

    One primary's lost replica must not keep the other shards' entries held for ever, which a
    cluster-wide "fewest replicas" would do."""

    records: Sequence[ScriptCall]
    wait_ms: int

    def sync(self, client: redis.Redis) -> list[str]:
        counts = _replicas_by_node(client.info("replication", target_nodes="primaries"))
        with client.pipeline(transaction=False) as pipe:
            waits = self._queue(client, pipe, counts)
            return self._confirmed(client, pipe.execute(), waits)

    async def aio(self, client: aioredis.Redis) -> list[str]:
        counts = _replicas_by_node(await client.info("replication", target_nodes="primaries"))
        async with client.pipeline(transaction=False) as pipe:
            waits = self._queue(client, pipe, counts)
            return self._confirmed(client, await pipe.execute(), waits)

    def _queue(self, client: Any, pipe: Any, counts: dict[str, int]) -> list[str]:
        nodes = {}
        for call in self.records:
            call.queue(pipe)
            node = client.get_node_from_key(call.keys[0])
            nodes[node.name] = node
        waited = [name for name in nodes if counts.get(name, 0) > 0]
        for name in waited:
            pipe.execute_command("WAIT", 1, self.wait_ms, target_nodes=nodes[name])
        return waited

    def _confirmed(self, client: Any, replies: list[Any], waited: list[str]) -> list[str]:
        acked = {name for name, reply in zip(waited, replies[len(replies) - len(waited):],
                                             strict=True) if int(reply) >= 1}
        return [call.keys[0] for call in self.records
                if client.get_node_from_key(call.keys[0]).name in acked]


def _replicas_by_node(by_node: Any) -> dict[str, int]:
    return {name: count for name, info in dict(by_node).items()
            for count, _ in [_replication(info)]}


class ReplicaGuard:
    def __init__(self, settings: Settings, on_hold: Callable[[], None] | None = None) -> None:
        self.wait_ms = wait_ms_for(settings)
        self.on_hold = on_hold  # e.g. make sure a background probe runs to re-drive the hold
        self.cluster = topology_of(settings.redis_url) == "cluster"  # confirm per primary
        self.view = ReplicaView()
        self._rewritten_on = ""  # the last primary that got every held entry re-written
        self._lock = threading.Lock()
        self._held: OrderedDict[str, CacheEntry] = OrderedDict()
        self.confirmed = 0  # permanent writes a replica confirmed
        self.unconfirmed = 0  # permanent writes held because none did in time
        self.dropped = 0  # held writes dropped past MAX_HELD

    @property
    def enabled(self) -> bool:
        return self.wait_ms > 0

    @property
    def held(self) -> int:
        return len(self._held)

    def held_keys(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def plan_set(self, key: str, entry: CacheEntry, px: int | None) -> Plan[None]:
        """Write `entry`; a permanent one waits for a replica when the primary has any."""
        if px is not None or not self.enabled:
            yield from Set(key, entry.encode(), px=px)
            return
        yield from self.view.plan_refresh()
        if self.view.replicas == 0:
            yield from self._plan_set_unwaited(key, entry)
            return
        acked = yield from SetAndWait(key, entry.encode(), self.wait_ms)
        if acked >= 1:
            self.confirmed += 1
            if self._held:
                with self._lock:
                    self._held.pop(key, None)
            return
        self.view.look_again()
        self._hold(key, entry)

    def _plan_set_unwaited(self, key: str, entry: CacheEntry) -> Plan[None]:
        """A permanent write while our primary has no replica to wait for.

        Once a primary was seen with replicas, the write asks the server that took it (same
        connection) who it is: the state above may come from another pooled link, and during a
        failover links to the old and the new master coexist. Only a write that reached the
        old primary (or one that has replicas again, not waited for) is at risk and is held.
        """
        if not self.view.replicated_primary:  # never saw a replica: a plain SET, as before
            yield from Set(key, entry.encode())
            return
        if self.view.took_at_risk((yield from SetAndInspect(key, entry.encode()))):
            self._hold(key, entry)

    def held_entry(self, key: str) -> CacheEntry | None:
        """A permanent write no replica confirmed yet: acknowledged, so still readable when a
        failover lost it from Redis (until the re-drive puts it back)."""
        if not self._held:
            return None
        with self._lock:
            return self._held.get(key)

    def forget(self, key: str | None = None) -> None:
        """Stop holding `key` (every key without one): it was deleted, and a re-drive must not
        bring it back."""
        if not self._held:
            return
        with self._lock:
            if key is None:
                self._held.clear()
            else:
                self._held.pop(key, None)

    def hold_replayed(self, key: str, entry: CacheEntry) -> None:
        """A permanent entry the journal replay just wrote (without WAIT, one script per key):
        held like an unconfirmed write, so the re-drive waits for a replica to confirm it. Only
        once a primary was seen with replicas; no warning (nothing went wrong)."""
        if self.enabled and self.view.replicated_primary:
            self._hold(key, entry, quiet=True)

    def _hold(self, key: str, entry: CacheEntry, quiet: bool = False) -> None:
        with self._lock:
            first = not self._held
            self._held[key] = entry
            self._held.move_to_end(key)
            dropped = 0
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)
                dropped += 1
        if not quiet:
            self.unconfirmed += 1
        if dropped and self.dropped == 0:
            logger.warning("More than %d permanent cache writes wait for a replica: dropping "
                           "the oldest (a failover now may lose them)", MAX_HELD)
        self.dropped += dropped
        if first:
            if not quiet:
                logger.warning("No replica confirmed a permanent cache write within %d ms "
                               "(WAIT): holding such writes and re-writing them until one does",
                               self.wait_ms)
            if self.on_hold is not None:
                self.on_hold()

    def plan_redrive(self) -> Plan[int]:
        """Re-write held entries; drop those a replica confirmed. Returns how many."""
        if not self._held:
            return 0
        confirmed = 0
        try:
            yield from self.view.plan_refresh()
            if self.cluster:
                return (yield from self._plan_redrive_cluster())
            view = self.view
            if view.replicas == 0:
                # Nothing can confirm them here. They are on this primary if they were written
                # to it; a new primary (failover, the old one gone) gets them once.
                if view.primary in {view.replicated_primary, self._rewritten_on, ""}:
                    return 0
                for batch in self._batches():
                    yield from ReplayAndWait(self._records(batch), None)
                self._rewritten_on = view.primary
                return 0
            for batch in self._batches():
                acked = yield from ReplayAndWait(self._records(batch), self.wait_ms)
                if acked < 1:
                    self.view.look_again()
                    break
                confirmed += self._release(batch)
        except CacheBackendError as exc:  # the probe's next round tries again
            logger.debug("Re-writing held permanent entries failed: %s", exc)
        return self._note_confirmed(confirmed)

    def _plan_redrive_cluster(self) -> Plan[int]:
        confirmed = 0
        try:
            for batch in self._batches():
                keys = set((yield from RedriveOnCluster(self._records(batch), self.wait_ms)))
                confirmed += self._release(batch, keys)
        except CacheBackendError as exc:  # the probe's next round tries again
            logger.debug("Re-writing held permanent entries failed: %s", exc)
        return self._note_confirmed(confirmed)

    def _release(self, batch: list[tuple[str, CacheEntry]],
                 confirmed_keys: set[str] | None = None) -> int:
        """Stop holding the batch's entries a replica confirmed (all of them without
        `confirmed_keys`), unless a newer write re-held the key; returns how many."""
        released = 0
        with self._lock:
            for key, entry in batch:
                if (confirmed_keys is None or key in confirmed_keys) \
                        and self._held.get(key) is entry:
                    del self._held[key]
                    released += 1
        return released

    def _note_confirmed(self, confirmed: int) -> int:
        if confirmed:
            self.confirmed += confirmed
            logger.info("A replica confirmed %d held permanent cache writes (%d still held)",
                        confirmed, len(self._held))
        return confirmed

    def _batches(self) -> list[list[tuple[str, CacheEntry]]]:
        with self._lock:
            items = list(self._held.items())
        return [items[i:i + REDRIVE_BATCH] for i in range(0, len(items), REDRIVE_BATCH)]

    @staticmethod
    def _records(batch: list[tuple[str, CacheEntry]]) -> list[ScriptCall]:
        return [ScriptCall(REPLAY_SCRIPT, (key,), args) for key, entry in batch
                for args in [replay_arguments(JournalRecord(key, entry, None, entry.created_at))]
                if args is not None]
