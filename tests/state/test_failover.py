"""Game moves survive a Redis failover (WAIT on room saves, app/state/replicas.py).

A real master, replica and sentinel; rounds are won in many rooms while `SENTINEL FAILOVER`
promotes the replica. Every round the book acknowledged (``transact`` returned) must be in the
new master afterwards: in the room's scores and in its history.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis

from app.cache.connection import async_client
from app.cache.replication import wait_ms_for
from app.game import events as ev
from app.game.decks import DeckLibrary
from app.game.room import Room
from app.state.book import RoomBook, ServiceDegraded
from app.state.record import RoomRecord, SeatState, decode
from app.state.redis_store import RedisRoomStore, history_key, room_key
from tests.cache.conftest import make_settings
from tests.game.support import czar, make_deck, one, play_all, room_settings
from tests.support.topologies import SentinelTopology

pytestmark = pytest.mark.slow
LIBRARY = DeckLibrary([make_deck()])
ROOMS = 24
MOVE_INTERVAL = 0.004  # about 250 rounds a second in all, about 10 per room and second


def win(record: RoomRecord) -> Sequence[ev.Event]:
    room = record.room
    revealed = one(play_all(room), ev.SubmissionsRevealed)
    return room.pick_winner(czar(room), revealed.submissions[0].submission_id)


async def open_rooms(book: RoomBook) -> list[str]:
    codes = []
    for i in range(ROOMS):
        code = f"F{i:04d}"
        room = Room(code, room_settings(score_limit=50), [make_deck()], rng=random.Random(i),
                    clock=book.clock)
        for p in range(3):
            room.add_player(f"P{p}")
        record = RoomRecord(room, {p.id: SeatState(f"t{n}", f"sid{n}", "me")
                                   for n, p in enumerate(room.players)})
        book.new_record(record)
        assert await book.create(record)
        host = room.players[0].id
        await book.transact(code, lambda r, host=host: r.room.start_game(host))
        codes.append(code)
    return codes


def failover_done(topo: SentinelTopology, old_port: int) -> bool:
    """The sentinels name a new master and the old one follows it as a replica."""
    if topo.master_address()[1] == old_port:
        return False
    with topo.server_at(old_port).client() as old:
        return old.info("replication").get("master_link_status") == "up"


async def test_a_failover_loses_no_acknowledged_move(tmp_path: Path) -> None:
    topo = SentinelTopology(tmp_path / "sentinel")
    topo.start()
    settings = make_settings(tmp_path, topo.url())
    client = async_client(settings)
    store = RedisRoomStore(client, wait_ms_for(settings))
    book = RoomBook(store, LIBRARY, grace=10, idle=10_000, clock=time.time)
    try:
        codes = await open_rooms(book)
        won = dict.fromkeys(codes, 0)
        old_port, moves, deadline = topo.master.port, 0, time.monotonic() + 30
        while not (moves > 400 and moves % 50 == 0 and failover_done(topo, old_port)):
            assert time.monotonic() < deadline, "the failover did not complete in 30 s"
            code = codes[moves % ROOMS]
            try:
                await book.transact(code, win)
                won[code] += 1  # acknowledged
            except ServiceDegraded:
                pass  # refused: nothing to keep
            moves += 1
            if moves == 300:
                topo.failover()
            if moves % 25 == 0:  # the ticker's work
                await book.write_back()
                await book.confirm_saves()
            await asyncio.sleep(MOVE_INTERVAL)
        held_at_most = store.replicas.unconfirmed

        async def settled() -> bool:
            await book.write_back()
            await book.confirm_saves()
            return not store.replicas.held and not book.pending_write_back

        for _ in range(50):  # every held save confirmed within 5 s
            if await settled():
                break
            await asyncio.sleep(0.1)
        assert not store.replicas.held, f"{len(store.replicas.held)} room saves still held"

        host, port = topo.master_address()
        with redis.Redis(host=host, port=port, socket_timeout=2) as master:
            lost = {}
            for code in codes:
                version, text = master.hmget(room_key(code), "v", "s")
                stored = decode(text, int(version), LIBRARY, time.time)
                rounds = master.llen(history_key(code))
                if (sum(stored.room.scores().values()), rounds) != (won[code], won[code]):
                    lost[code] = (won[code], sum(stored.room.scores().values()), rounds)
        assert sum(won.values()) > 400
        assert not lost, (f"acknowledged rounds lost (won, scored, in history): {lost}; "
                          f"{held_at_most} saves were held")
    finally:
        await client.aclose()
        topo.stop()


async def test_a_save_no_replica_confirms_is_held_and_restored(tmp_path: Path) -> None:
    """The replica stops answering: saves are held (not refused), and a held save that the
    primary lost is put back before the room's next save, with its round in the history."""
    topo = SentinelTopology(tmp_path / "sentinel")
    topo.start()
    settings = make_settings(tmp_path, topo.url())
    client = async_client(settings)
    store = RedisRoomStore(client, wait_ms_for(settings))
    book = RoomBook(store, LIBRARY, grace=10, idle=10_000, clock=time.time)
    try:
        (code, *_) = await open_rooms(book)
        await book.transact(code, win)
        for _ in range(50):  # confirmed at once, or (busy machine) held and confirmed soon
            if store.replicas.confirmed and not store.replicas.held:
                break
            await book.confirm_saves()
            await asyncio.sleep(0.1)
        assert store.replicas.confirmed >= 1 and not store.replicas.held
        held_before = store.replicas.unconfirmed
        topo.replicas[0].freeze()
        await book.transact(code, win)  # WAIT runs out: held, still acknowledged
        assert code in store.replicas.held and store.replicas.unconfirmed == held_before + 1
        with topo.master.client() as master:  # as if the failover had lost that save
            master.hset(room_key(code), "v", 3)
            master.rpop(history_key(code))
        topo.replicas[0].thaw()
        await book.transact(code, win)  # restored first, then saved on top of it
        with topo.master.client() as master:
            stored = decode(master.hget(room_key(code), "s"), 5, LIBRARY, time.time)
            assert master.hget(room_key(code), "v") == "5"
            assert master.llen(history_key(code)) == 3
        assert sum(stored.room.scores().values()) == 3
        assert not store.replicas.held  # the replica confirmed the last save, and so the rest
    finally:
        await client.aclose()
        topo.stop()
