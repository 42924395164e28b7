"""Two processes submit in the same room at the same moment, each from the same stored version.

The compare-and-set makes the second save fail and run again on the first one's result, so both
submissions count. The same interleaving through a store without the version check loses one:
the test can tell, and the protection is what makes the difference."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid

import pytest
import redis.asyncio as aioredis

from app.game.decks import load_library
from app.game.registry import RoomRegistry
from app.game.settings import RoomSettings
from app.state.book import RoomBook
from app.state.record import RoomRecord, SeatState
from app.state.redis_store import RedisRoomStore
from tests.support.app_server import REPO

pytestmark = pytest.mark.slow  # two Python processes per case, about 2 s


async def _race(redis_url: str, protected: bool) -> tuple[int, list[str]]:
    client = aioredis.Redis.from_url(redis_url)
    book = RoomBook(RedisRoomStore(client), load_library(), grace=60, idle=600)
    room, host, _ = RoomRegistry(book.library, rng=random.Random(9)).create_room(
        "Ada", RoomSettings())
    room.add_player("Bo")
    room.add_player("Cy")
    room.start_game(host.id)
    assert room.round is not None
    players = sorted(room.round.participants)
    record = RoomRecord(room, {p.id: SeatState(p.id) for p in room.players})
    book.new_record(record)
    assert await book.create(record)
    barrier = f"test:barrier:{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.cluster.interleave", redis_url,
                               room.code, pid, barrier, "1" if protected else "0"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
             for pid in players]
    outputs = [p.communicate(timeout=30)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    fresh = await book.peek(room.code)
    await client.aclose()
    assert fresh is not None and fresh.room.round is not None
    return len(fresh.room.round.submissions), outputs


async def test_concurrent_moves_from_two_processes_both_count(redis_url: str) -> None:
    submitted, outputs = await _race(redis_url, protected=True)
    assert submitted == 2  # both players' cards are on the table (and the round revealed)
    assert sorted(outputs) == ["conflicts=0\n", "conflicts=1\n"]  # one save ran twice


async def test_without_the_version_check_the_same_race_loses_a_move(redis_url: str) -> None:
    submitted, _ = await _race(redis_url, protected=False)
    assert submitted == 1
