"""Game moves survive a Redis failover: a room's save waits for one replica (`WAIT 1 <ms>`).

A save the primary acknowledged but had not passed on to a replica dies with that primary when a
replica is promoted. The policy is the one of permanent cache entries (app/cache/replication.py
explains it, and this module uses its parts): when the primary has replicas, the save script and
a WAIT go in one pipeline; while the primary we last saw with replicas has none (a failover under
way), the server that ran the save says who it is; with no replica ever seen, a plain save.

A save no replica confirmed is not an error (the move stands and was broadcast); it is *held*:
the record, its version and the round outcomes of every held save of the room. Held rooms are
written again (``confirm``, from the ticker, and before the room's next save) until a replica
confirms them. The re-write compares versions: it restores a room only where the stored one is
older (the save died with the old primary) or missing when the room's creation is among the held
saves, and rewrites the very same save (so that a WAIT covers it); a room that moved on from our
version, or was saved by another instance at that version meanwhile, is left alone. Each lost
round outcome goes back to the history once.

A held room is in this instance's memory: if this instance dies while holding it, it is lost,
as it would be without WAIT. REDIS_WAIT_MS=0 turns the waiting off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from app.cache.connection import is_cluster
from app.cache.replication import (
    REDRIVE_BATCH,
    RedriveOnCluster,
    ReplayAndWait,
    Replication,
    ReplicaView,
    ScriptAndInspect,
    ScriptAndWait,
    ScriptCall,
)

logger = logging.getLogger(__name__)

MAX_HELD_ROOMS = 2_000  # about 12 KB each: a bound of about 25 MB

# KEYS: room, history. ARGV: version, text, ttl ms, '1' if a missing room is to be restored
# (its creation was held), then per held save: its version, n, its n round outcomes.
_RESTORE = """
local stored = redis.call('HGET', KEYS[1], 'v')
local version = tonumber(ARGV[1])
if stored then
  stored = tonumber(stored)
  if stored > version then return 0 end
  if stored == version and redis.call('HGET', KEYS[1], 's') ~= ARGV[2] then return 0 end
elseif ARGV[4] == '1' then
  stored = 0
else
  return 0
end
redis.call('HSET', KEYS[1], 'v', version, 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local i = 5
while i <= #ARGV do
  local saved, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if saved > stored then
    for j = i + 2, i + 1 + n do redis.call('RPUSH', KEYS[2], ARGV[j]) end
  end
  i = i + 2 + n
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
"""


@dataclass(slots=True)
class Save:
    """One save of a room, as written: the version it wrote and what it appended."""

    version: int
    text: str
    ttl_ms: int
    outcomes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class HeldRoom:
    """The newest unconfirmed save of a room, and the outcomes of every held save."""

    latest: Save
    since: int  # the first held version (1: the room's creation)
    outcomes: list[tuple[int, list[str]]]

    def restore(self, keys: tuple[str, str]) -> ScriptCall:
        args: list[str | int] = [self.latest.version, self.latest.text, self.latest.ttl_ms,
                                 "1" if self.since == 1 else "0"]
        for version, outcomes in self.outcomes:
            args += [version, len(outcomes), *outcomes]
        return ScriptCall(_RESTORE, keys, tuple(args))


class RoomReplicas:
    """Runs room saves, waiting for a replica; holds and re-writes the unconfirmed ones."""

    def __init__(self, client: aioredis.Redis, wait_ms: int,
                 keys: Callable[[str], tuple[str, str]]) -> None:
        self.client = client
        self.wait_ms = wait_ms
        self.keys = keys  # a room code -> (room key, history key)
        self.cluster = is_cluster(client)
        self.view = ReplicaView()
        self.held: dict[str, HeldRoom] = {}
        self.confirmed = 0  # saves a replica confirmed
        self.unconfirmed = 0  # saves held because none did in time

    async def _refresh(self) -> None:
        if self.view.stale:
            self.view.seen(await Replication(self.view.replicated_primary).aio(self.client))

    async def run(self, code: str, call: ScriptCall, plain: Callable[[], Awaitable[Any]],
                  save: Save) -> Any:
        """Run a save (``call``; ``plain`` runs the same without waiting) that writes ``save``
        when its reply is true; returns the reply."""
        if self.wait_ms <= 0:
            return await plain()
        await self._refresh()
        view = self.view
        if view.replicas > 0:
            reply, acked = await ScriptAndWait(call, self.wait_ms).aio(self.client)
            if reply and acked >= 1:
                self.confirmed += 1
                self.held.pop(code, None)  # replication is in order: earlier saves are in too
            elif reply:
                view.look_again()
                self._hold(code, save)
            return reply
        if not view.suspect:  # no replica ever, or a new primary with none yet
            return await plain()
        reply, took = await ScriptAndInspect(call).aio(self.client)
        if reply and view.took_at_risk(took):
            self._hold(code, save)
        return reply

    def forget(self, code: str) -> None:
        """The room is gone (closed and deleted): nothing to restore."""
        self.held.pop(code, None)

    async def restore(self, code: str) -> None:
        """Before the next save of a held room: put the held save back if it was lost, so that
        the compare-and-set starts from it and not from an older version."""
        held = self.held.get(code)
        if held is not None:
            await self.client.execute_command(  # type: ignore[no-untyped-call]
                *held.restore(self.keys(code)).command)

    def _hold(self, code: str, save: Save) -> None:
        # A new object each time: `confirm` releases only the very save it re-wrote.
        older = self.held.get(code)
        if older is None:
            if len(self.held) >= MAX_HELD_ROOMS:
                logger.warning("More than %d rooms' saves wait for a replica: not holding room "
                               "%s (a failover now may lose its last move)", MAX_HELD_ROOMS, code)
                return
            if not self.held:
                logger.warning("No replica confirmed a room save within %d ms (WAIT): holding "
                               "such saves and re-writing them until one does", self.wait_ms)
        outcomes = [] if older is None else list(older.outcomes)
        if save.outcomes:
            outcomes.append((save.version, save.outcomes))
        self.held[code] = HeldRoom(save, save.version if older is None else older.since, outcomes)
        self.unconfirmed += 1

    async def confirm(self) -> int:
        """Re-write held rooms (never over a newer save), waiting for a replica where there is
        one; stop holding those it confirmed. Returns how many."""
        if not self.held:
            return 0
        await self._refresh()
        batch = list(self.held.items())[:REDRIVE_BATCH]
        calls = [held.restore(self.keys(code)) for code, held in batch]
        if self.cluster:
            confirmed_keys = set(await RedriveOnCluster(calls, self.wait_ms).aio(self.client))
        elif self.view.replicas > 0:
            acked = await ReplayAndWait(calls, self.wait_ms).aio(self.client)
            confirmed_keys = {call.keys[0] for call in calls} if acked >= 1 else set()
        else:  # nothing can confirm them yet; a new primary gets them
            await ReplayAndWait(calls, None).aio(self.client)
            confirmed_keys = set()
        confirmed = 0
        for (code, held), call in zip(batch, calls, strict=True):
            if call.keys[0] in confirmed_keys and self.held.get(code) is held:
                del self.held[code]
                confirmed += 1
        if confirmed:
            self.confirmed += confirmed
            logger.info("A replica confirmed %d held room saves (%d still held)", confirmed,
                        len(self.held))
        return confirmed
