"""Game moves survive a Redis failover (WAIT on room saves, app/state/replicas.py).

Rounds are won in many rooms while a real Sentinel promotes the replica (`SENTINEL FAILOVER`),
or while a primary of a real 3+3 Cluster is killed. Every round the book acknowledged
(``transact`` returned) must be in Redis afterwards: in the room's scores and in its history.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from app.cache.connection import async_client
from app.cache.replication import wait_ms_for
from app.game import events as ev
from app.game.decks import DeckLibrary
from app.game.room import Room
from app.state.book import RoomBook, ServiceDegraded
from app.state.record import RoomRecord, SeatState, decode
from app.state.redis_store import RedisRoomStore, history_key, room_key
from app.state.store import StoreUnavailable
from tests.cache.conftest import make_settings
from tests.game.support import czar, make_deck, one, play_all, room_settings
from tests.support.topologies import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.slow
LIBRARY = DeckLibrary([make_deck()])
ROOMS = 24
MOVE_INTERVAL = 0.004  # about 250 rounds a second in all, about 10 per room and second


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[SentinelTopology]:
    """A master, its replica and a sentinel of our own (the tests change roles)."""
    topology = SentinelTopology(tmp_path / "sentinel")
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterTopology]:
    topology = ClusterTopology(tmp_path / "cluster", replicas_per_primary=1)
    topology.start()
    yield topology
    topology.stop()


@contextlib.asynccontextmanager
async def book_on(tmp_path: Path, url: str) -> AsyncIterator[tuple[RoomBook, RedisRoomStore]]:
    """A room book on the Redis at ``url`` (any topology), waiting for replicas by default."""
    settings = make_settings(tmp_path, url)
    client = async_client(settings)
    store = RedisRoomStore(client, wait_ms_for(settings))
    try:
        yield RoomBook(store, LIBRARY, grace=10, idle=10_000, clock=time.time), store
    finally:
        await client.aclose()


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


async def play_through(book: RoomBook, codes: list[str], fault: Callable[[], None],
                       done: Callable[[], bool]) -> dict[str, int]:
    """Win rounds round-robin in every room; ``fault`` after 300 moves; go on until ``done``
    (asked every 50 moves after the fault). Returns the rounds acknowledged per room."""
    won = dict.fromkeys(codes, 0)
    moves, deadline = 0, time.monotonic() + 45
    while not (moves > 300 and moves % 50 == 0 and done()):
        assert time.monotonic() < deadline, "the failover did not complete in 45 s"
        code = codes[moves % ROOMS]
        try:
            await book.transact(code, win)
            won[code] += 1  # acknowledged
        except ServiceDegraded:
            pass  # refused: nothing to keep
        moves += 1
        if moves == 300:
            fault()
        if moves % 25 == 0:
            await ticker_work(book)
        await asyncio.sleep(MOVE_INTERVAL)
    return won


async def ticker_work(book: RoomBook) -> None:
    """What the ticker does for the book after a failover (app/sockets/server.py)."""
    try:
        await book.write_back()
    except StoreUnavailable:
        pass  # not yet: the next tick tries again
    await book.confirm_saves()


async def settle(book: RoomBook, store: RedisRoomStore, within: float) -> None:
    """What the ticker does after the failover, until nothing is held or written back."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        await ticker_work(book)
        if not store.replicas.held and not book.pending_write_back:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(store.replicas.held)} room saves still held, "
                         f"{book.pending_write_back} rooms not written back")


def lost_rounds(client: redis.Redis | RedisCluster, codes: list[str], won: dict[str, int]
                ) -> dict[str, tuple[int, int, int]]:
    """Rooms whose stored scores or history miss acknowledged rounds: (won, scored, history)."""
    lost = {}
    for code in codes:
        version, text = client.hmget(room_key(code), "v", "s")
        scored = sum(decode(text, int(version), LIBRARY, time.time).room.scores().values())
        rounds = client.llen(history_key(code))
        if (scored, rounds) != (won[code], won[code]):
            lost[code] = (won[code], scored, rounds)
    return lost


async def test_a_sentinel_failover_loses_no_acknowledged_move(topo: SentinelTopology,
                                                              tmp_path: Path) -> None:
    async with book_on(tmp_path, topo.url()) as (book, store):
        codes = await open_rooms(book)
        old_port = topo.master.port
        won = await play_through(book, codes, topo.failover,
                                 lambda: failover_done(topo, old_port))
        await settle(book, store, within=5)
        host, port = topo.master_address()
        with redis.Redis(host=host, port=port, socket_timeout=2) as master:
            lost = lost_rounds(master, codes, won)
        assert sum(won.values()) > 400
        assert not lost, (f"acknowledged rounds lost (won, scored, in history): {lost}; "
                          f"{store.replicas.unconfirmed} saves were held")


async def test_a_killed_cluster_primary_loses_no_acknowledged_move(cluster: ClusterTopology,
                                                                  tmp_path: Path) -> None:
    """3 primaries + 3 replicas; the primary of some rooms is SIGKILLed mid-stream. Its rooms
    are unreachable until the replica takes over: this instance, alone, plays them on from its
    copies and writes them back (the outage path); saves before the kill waited for the
    replica."""
    async with book_on(tmp_path, cluster.url()) as (book, store):
        codes = await open_rooms(book)
        victim = cluster.server_for(room_key(codes[0]))
        (replica,) = cluster.replicas_of(victim)
        on_victim = [c for c in codes if cluster.server_for(room_key(c)) is victim]

        def recovered() -> bool:
            try:
                return cluster.role(replica) == "master" and cluster.state_ok()
            except redis.RedisError:
                return False

        won = await play_through(book, codes, lambda: cluster.kill(victim), recovered)
        assert store.replicas.confirmed >= 250  # before the kill, saves waited for replicas
        await settle(book, store, within=5)
        raw = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", s.port)
                                          for s in cluster.alive()], socket_timeout=2)
        try:
            lost = lost_rounds(raw, codes, won)
        finally:
            raw.close()
        assert on_victim and all(won[c] > 10 for c in on_victim)
        assert not lost, f"acknowledged rounds lost (won, scored, in history): {lost}"


async def test_a_save_no_replica_confirms_is_held_and_restored(topo: SentinelTopology,
                                                               tmp_path: Path) -> None:
    """The replica stops answering: saves are held (not refused), and a held save that the
    primary lost is put back before the room's next save, with its round in the history."""
    async with book_on(tmp_path, topo.url()) as (book, store):
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
