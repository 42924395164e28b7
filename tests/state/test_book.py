"""The room book on both stores: compare-and-set, history, schedule and the outage copy."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence

import pytest
import redis.asyncio as aioredis

from app.game import events as ev
from app.game.decks import DeckLibrary
from app.game.errors import NotHost, RoomNotFound
from app.game.room import Room
from app.state.book import RoomBook, ServiceDegraded
from app.state.record import RoomRecord, SeatState, decode_outcome
from app.state.redis_store import RedisRoomStore, room_key
from app.state.store import HISTORY_LIMIT, MemoryRoomStore, RoomStore
from tests.game.support import FakeClock, czar, make_deck, one, play_all, room_settings
from tests.support.redis_server import RedisServer

LIBRARY = DeckLibrary([make_deck()])


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    if request.param == "memory":
        yield MemoryRoomStore()
        return
    url: str = request.getfixturevalue("redis_url")
    client = aioredis.Redis.from_url(url)
    yield RedisRoomStore(client)
    await client.aclose()


def book_on(store: RoomStore, clock: FakeClock, alone: bool = True) -> RoomBook:
    return RoomBook(store, LIBRARY, grace=10, idle=100, alone=lambda: alone, clock=clock)


async def new_room(book: RoomBook, players: int = 3) -> RoomRecord:
    room = Room("ACDEF", room_settings(score_limit=50), [make_deck()], rng=random.Random(5),
                clock=book.clock)
    for i in range(players):
        room.add_player(f"P{i}")
    record = RoomRecord(room, {p.id: SeatState(f"t{i}", f"sid{i}", "me")
                               for i, p in enumerate(room.players)})
    book.new_record(record)
    assert await book.create(record)
    return record


def win(record: RoomRecord) -> Sequence[ev.Event]:
    room = record.room
    revealed = one(play_all(room), ev.SubmissionsRevealed)
    return room.pick_winner(czar(room), revealed.submissions[0].submission_id)


async def test_a_stale_copy_loses_the_race_and_runs_again_on_the_fresh_one(
        store: RoomStore) -> None:
    """Two instances (two books on one store): the second applies its move on a copy the first
    has moved on from. Its save fails, it reloads and applies the move again: no lost update."""
    clock = FakeClock()
    a, b = book_on(store, clock), book_on(store, clock)
    record = await new_room(a)
    host = record.room.players[0].id
    await b.transact("ACDEF", lambda r: r.room.start_game(host))  # b caches version 2
    # a's copy is still in the lobby: the move is refused there, so a asks the store, finds a
    # newer version and plays on that one (version 3).
    await a.transact("ACDEF", win)
    assert a.conflicts == 0
    runs: list[int] = []

    def win_again(r: RoomRecord) -> Sequence[ev.Event]:
        runs.append(r.version)
        return win(r)

    saved, events = await b.transact("ACDEF", win_again)
    assert runs == [2, 3] and b.conflicts == 1  # ran on the stale copy, then on the fresh one
    assert sum(saved.room.scores().values()) == 2  # both wins counted
    assert any(isinstance(e, ev.RoundWon) for e in events)
    fresh = await a.peek("ACDEF")
    assert fresh is not None and fresh.version == saved.version == 4


async def test_a_refused_move_saves_nothing(store: RoomStore) -> None:
    book = book_on(store, FakeClock())
    record = await new_room(book)
    with pytest.raises(NotHost):
        await book.transact("ACDEF", lambda r: r.room.start_game(r.room.players[1].id))
    fresh = await book.peek("ACDEF")
    assert fresh is not None and fresh.version == record.version == 1


async def test_history_keeps_the_last_rounds_with_their_game(store: RoomStore) -> None:
    book = book_on(store, FakeClock())
    record = await new_room(book, players=4)
    host = record.room.players[0].id
    await book.transact("ACDEF", lambda r: r.room.start_game(host))
    for _ in range(3):
        await book.transact("ACDEF", win)
    history = [decode_outcome(t) for t in await book.history("ACDEF")]
    assert [(game, o.round, type(o).__name__) for game, o in history] == [
        (1, 1, "RoundWon"), (1, 2, "RoundWon"), (1, 3, "RoundWon")]
    if isinstance(store, MemoryRoomStore):  # the bound, cheaply, on the store itself
        await store.save("ACDEF", (await store.version("ACDEF")) or 0, "{}",
                         ["x"] * (HISTORY_LIMIT + 5), 60)
        assert len(await store.history("ACDEF")) == HISTORY_LIMIT


async def test_the_schedule_is_claimed_once_and_comes_back_after_the_lease(
        store: RoomStore) -> None:
    clock = FakeClock()
    a, b = book_on(store, clock), book_on(store, clock)
    await new_room(a)
    assert await a.due() == [] and await b.due() == []
    clock.advance(100)  # the idle check is due
    assert await a.due() == ["ACDEF"]
    assert await b.due() == []  # claimed by a
    clock.advance(6)  # a died without rescheduling: after the lease, someone takes it again
    assert await b.due() == ["ACDEF"]


async def test_an_emptied_room_is_deleted(store: RoomStore) -> None:
    book = book_on(store, FakeClock())
    record = await new_room(book, players=1)
    pid = record.room.players[0].id
    await book.transact("ACDEF", lambda r: r.room.remove(pid))
    assert await book.peek("ACDEF") is None
    with pytest.raises(RoomNotFound):
        await book.transact("ACDEF", lambda r: [])


async def test_room_keys_carry_a_ttl_and_share_a_hash_tag(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    book = book_on(RedisRoomStore(client), FakeClock())
    await new_room(book)
    ttl = await client.pttl(room_key("ACDEF"))
    assert book.idle * 1000 < ttl <= book.ttl * 1000
    assert room_key("ACDEF") == "punchline:room:{ACDEF}"
    await client.aclose()


async def test_alone_in_an_outage_it_plays_on_and_writes_back(own_redis: RedisServer) -> None:
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    book = book_on(RedisRoomStore(client), FakeClock(), alone=True)
    record = await new_room(book)
    host = record.room.players[0].id
    own_redis.freeze()
    try:
        await book.transact("ACDEF", lambda r: r.room.start_game(host))  # acknowledged here
        assert book.pending_write_back == 1
    finally:
        own_redis.thaw()
    assert await book.write_back() == 1
    other = book_on(RedisRoomStore(client), FakeClock())
    fresh = await other.peek("ACDEF")
    assert fresh is not None and fresh.room.phase == "submitting"
    await client.aclose()


async def test_with_peers_in_an_outage_moves_are_refused(own_redis: RedisServer) -> None:
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    book = book_on(RedisRoomStore(client), FakeClock(), alone=False)
    record = await new_room(book)
    host = record.room.players[0].id
    own_redis.freeze()
    try:
        with pytest.raises(ServiceDegraded):
            await book.transact("ACDEF", lambda r: r.room.start_game(host))
    finally:
        own_redis.thaw()  # nothing was acknowledged, nothing is written back
    assert book.pending_write_back == 0
    fresh = await book.peek("ACDEF")
    assert fresh is not None and fresh.room.phase == "lobby"
    await client.aclose()


async def test_the_in_memory_copies_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import app.state.book as book_module

    monkeypatch.setattr(book_module, "CACHED_RECORDS", 3)
    store = MemoryRoomStore()
    book = book_on(store, FakeClock())
    for code in ("ACDEF", "CDEFG", "DEFGH", "EFGHJ", "FGHJK"):
        room = Room(code, room_settings(), [make_deck()], clock=book.clock)
        room.add_player("P")
        record = RoomRecord(room, {})
        book.new_record(record)
        assert await book.create(record)
    assert list(book._cache) == ["DEFGH", "EFGHJ", "FGHJK"]  # the least recently used went
    fresh = await book.peek("ACDEF")  # still in the store, loaded again on use
    assert fresh is not None and fresh.version == 1
