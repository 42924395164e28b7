"""Applying game transitions to rooms that live in a store, one at a time, from any instance.

``RoomBook.transact(code, fn)`` loads the room, runs ``fn`` (a transition: it changes the record
and returns the game's events) and saves the result only if nobody saved the room in between
(the store's version compare-and-set). When someone did, the record is reloaded and ``fn`` runs
again on the fresh copy; the events of a lost attempt are thrown away, so only what was saved is
ever broadcast. Why optimistic and not a lock: docs/game.md, "Shared state".

Records this instance saved stay in memory: the next transition of the room starts from them
without a read, and a save only fails (and reloads) when another instance moved the room on.

**Redis outage.** An instance that was alone (no other instance's heartbeat) when the store
stopped answering goes on with its in-memory copies and writes them back when the store answers
again. With other instances around, it refuses with ``service_degraded`` instead: two instances
playing the same room on their own copies would have to throw one of them away later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from app.game import events as ev
from app.game.decks import DeckLibrary
from app.game.errors import GameError, RoomNotFound
from app.state.record import RoomRecord, decode, encode, encode_outcome
from app.state.store import RoomStore, StoreUnavailable

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 16
CACHED_RECORDS = 2000  # records kept in memory per instance (about 10 KB each)
Transition = Callable[[RoomRecord], Sequence[ev.Event]]
Publish = Callable[[RoomRecord, Sequence[ev.Event]], Awaitable[None]]


class ServiceDegraded(GameError):
    code = "service_degraded"


class RoomBook:
    def __init__(
        self,
        store: RoomStore,
        library: DeckLibrary,
        *,
        grace: float,
        idle: float,
        alone: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.library = library
        self.grace = grace
        self.idle = idle
        self.alone = alone  # was this instance alone when the store last answered?
        self.clock = clock
        # Backstop TTL of a room's keys: a room nobody touches is closed by the idle check long
        # before; this only cleans up after instances that all died.
        self.ttl = idle + grace + 300.0
        self.conflicts = 0  # saves that lost the compare-and-set and ran again
        # Records this instance saved, most recently used last; bounded, but never dropping a
        # record only saved here (outage) before it is written back.
        self._cache: OrderedDict[str, RoomRecord] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._dirty: dict[str, list[str]] = {}  # saved only here (outage): code -> outcomes
        self._local_due: dict[str, float] = {}

    # --- reading --------------------------------------------------------------------------

    def _decode(self, code: str, loaded: tuple[int, str | bytes]) -> RoomRecord:
        return decode(loaded[1], loaded[0], self.library, self.clock)

    async def peek(self, code: str) -> RoomRecord | None:
        """The room as stored now (a fresh read; outage: the local copy, if any)."""
        try:
            loaded = await self.store.load(code)
        except StoreUnavailable:
            if code in self._cache and self.alone():
                return self._cache[code]
            raise ServiceDegraded("the game service is degraded; try again shortly") from None
        return self._decode(code, loaded) if loaded is not None else None

    async def history(self, code: str) -> list[str]:
        return await self.store.history(code)

    # --- writing --------------------------------------------------------------------------

    def new_record(self, record: RoomRecord) -> None:
        now = self.clock()
        record.last_active = now
        record.idle_check = now + self.idle

    async def create(self, record: RoomRecord) -> bool:
        """Store a new room; False if its code is taken (pick another)."""
        text = encode(record)
        try:
            if not await self.store.create(record.code, text, self.ttl):
                return False
        except StoreUnavailable:
            if not self.alone():
                raise ServiceDegraded("the game service is degraded; try again shortly") from None
            self._dirty[record.code] = []
        record.version = 1
        self._keep(record)
        await self._schedule(record)
        return True

    def lock(self, code: str) -> asyncio.Lock:
        return self._locks.setdefault(code, asyncio.Lock())

    async def transact(self, code: str, transition: Transition, *,
                       publish: Publish | None = None, reschedule: bool = False
                       ) -> tuple[RoomRecord, list[ev.Event]]:
        """Apply ``transition`` to the room and save it; then ``publish`` the saved record and
        its events, still holding this instance's lock of the room (so this instance sends its
        rooms' updates in order). Raises ``RoomNotFound`` for a room that is not (or no longer)
        there, the transition's ``GameError`` (nothing saved), or ``ServiceDegraded``.
        ``reschedule``: write the room's due time even if unchanged (the ticker's claim moved
        it)."""
        async with self.lock(code):
            for _ in range(MAX_ATTEMPTS):
                cached = code in self._cache
                record = await self._current(code)
                try:
                    events = list(transition(record))
                except Exception:
                    self._cache.pop(code, None)  # it may be half changed
                    if cached and await self._moved_on(code, record.version):
                        continue  # refused on a stale copy: ask the fresh one
                    raise
                for e in events:
                    if isinstance(e, ev.PlayerLeft):
                        seat = record.seats.pop(e.player_id, None)
                        if seat is not None:
                            record.left_seats[e.player_id] = seat
                if record.attended():
                    record.unattended_since = None
                elif record.unattended_since is None:
                    record.unattended_since = self.clock()
                if await self._store(record, events, reschedule):
                    if publish is not None:
                        await publish(record, events)
                    return record, events
                self.conflicts += 1
            raise ServiceDegraded(f"room {code} is too busy; try again")

    def _keep(self, record: RoomRecord) -> None:
        self._cache[record.code] = record
        self._cache.move_to_end(record.code)
        while len(self._cache) > CACHED_RECORDS:
            oldest = next(iter(self._cache))
            lock = self._locks.get(oldest)
            if oldest in self._dirty or (lock is not None and lock.locked()):
                break  # rare; the bound is soft
            del self._cache[oldest]
            self._locks.pop(oldest, None)

    async def _moved_on(self, code: str, version: int) -> bool:
        """Has the stored room moved past ``version``? (Outage: we cannot know; no.)"""
        try:
            return await self.store.version(code) != version
        except StoreUnavailable:
            return False

    async def _current(self, code: str) -> RoomRecord:
        cached = self._cache.get(code)
        if cached is not None:
            self._cache.move_to_end(code)
            cached.left_seats = {}
            return cached
        record = await self.peek(code)
        if record is None:
            self._forget(code)
            raise RoomNotFound(f"no room with code {code!r}")
        self._keep(record)
        return record

    async def _store(self, record: RoomRecord, events: list[ev.Event], reschedule: bool) -> bool:
        code = record.code
        outcomes = [encode_outcome(record.room.games, e) for e in events
                    if isinstance(e, ev.RoundWon | ev.RoundVoided)]
        delete = record.closed is not None or record.room.is_empty
        try:
            if code in self._dirty:  # an outage copy: write it back first
                await self._write_back(code)
            if delete:
                saved = await self.store.delete(code, record.version)
            else:
                saved = await self.store.save(code, record.version, encode(record), outcomes,
                                              self.ttl)
        except StoreUnavailable:
            if not self.alone():
                self._cache.pop(code, None)
                raise ServiceDegraded("the game service is degraded; try again shortly") from None
            self._dirty.setdefault(code, []).extend(outcomes)
            if delete:
                self._forget(code)
            else:
                self._local_due[code] = self.next_due(record)
            return True
        if not saved:
            self._cache.pop(code, None)
            return False
        if delete:
            self._forget(code)
            return True
        record.version += 1
        await self._schedule(record, force=reschedule)
        return True

    def _forget(self, code: str) -> None:
        self._cache.pop(code, None)
        self._local_due.pop(code, None)
        self._dirty.pop(code, None)
        lock = self._locks.get(code)
        if lock is not None and not lock.locked():
            del self._locks[code]

    async def _write_back(self, code: str) -> None:
        record = self._cache.get(code)
        outcomes = self._dirty[code]
        if record is None:
            del self._dirty[code]
            return
        await self.store.force(code, record.version + 1, encode(record), outcomes, self.ttl)
        record.version += 1
        del self._dirty[code]
        await self._schedule(record, force=True)

    async def write_back(self) -> int:
        """Save the rooms changed during an outage, once the store answers; returns how many."""
        done = 0
        for code in list(self._dirty):
            async with self.lock(code):
                if code in self._dirty:
                    await self._write_back(code)
                    done += 1
        if done:
            logger.info("wrote back %d room(s) changed while Redis was unreachable", done)
        return done

    @property
    def pending_write_back(self) -> int:
        return len(self._dirty)

    async def confirm_saves(self) -> int:
        """Re-write saves no replica confirmed in time (a failover may have lost them)."""
        try:
            return await self.store.confirm()
        except StoreUnavailable:
            return 0  # the next tick tries again

    # --- the schedule -----------------------------------------------------------------------

    def next_due(self, record: RoomRecord) -> float:
        """When the ticker must next look at the room: a round deadline, a reconnect grace
        running out, the unattended room's grace, or the idle check."""
        times = [record.idle_check]
        r = record.room.round
        if r is not None and r.deadline is not None:
            times.append(r.deadline)
        for seat in record.seats.values():
            if seat.sid is None and seat.disconnected_at is not None:
                times.append(seat.disconnected_at + self.grace)
        if record.unattended_since is not None:
            times.append(record.unattended_since + self.grace)
        return min(times)

    async def _schedule(self, record: RoomRecord, *, force: bool = False) -> None:
        """Put the room's next due time in the store's schedule.

        A slower instance's older due time could land after a newer one; so after writing,
        check the room's version: unchanged means any later save schedules after this write;
        changed means reload and schedule what the newest version needs."""
        at = self.next_due(record)
        self._local_due[record.code] = at
        if at == record.due and not force:
            return  # the previous version scheduled the same time
        record.due = at
        code, version = record.code, record.version
        for _ in range(MAX_ATTEMPTS):
            await self.store.schedule(code, at)
            stored = await self.store.version(code)
            if stored is None or stored == version:
                return
            loaded = await self.store.load(code)
            if loaded is None:
                return
            fresh = self._decode(code, loaded)
            at, version = self.next_due(fresh), fresh.version

    async def due(self, limit: int = 200) -> list[str]:
        """Rooms whose due time has come, claimed for a few seconds by this instance."""
        now = self.clock()
        try:
            return await self.store.claim_due(now, 5.0, limit)
        except StoreUnavailable:
            if not self.alone():
                return []
            due = [code for code, at in self._local_due.items() if at <= now][:limit]
            for code in due:
                self._local_due[code] = now + 1.0
            return due

    async def unschedule(self, code: str) -> None:
        """A room that is gone (its keys expired) but still in the schedule."""
        self._forget(code)
        try:
            await self.store.unschedule(code)
        except StoreUnavailable:
            pass
