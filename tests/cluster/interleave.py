"""One process's move for tests/cluster/test_interleaving.py: submit a player's cards through a
RoomBook on the test's Redis, pausing between load and save until the other process has loaded
too, so that both moves start from the same version.

    python -m tests.cluster.interleave REDIS_URL ROOM PLAYER BARRIER PROTECTED
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

import redis
import redis.asyncio as aioredis

from app.game import events as ev
from app.game.decks import load_library
from app.state.book import RoomBook
from app.state.record import RoomRecord
from app.state.redis_store import RedisRoomStore


class UnprotectedStore(RedisRoomStore):
    """The same store without the version check: what a naive GET-modify-SET would do."""

    async def save(self, code: str, expected: int, text: str, outcomes: list[str],
                   ttl: float) -> bool:
        await self.force(code, expected + 1, text, outcomes, ttl)
        return True


async def main(url: str, code: str, player_id: str, barrier: str, protected: bool) -> None:
    client = aioredis.Redis.from_url(url)
    store = RedisRoomStore(client) if protected else UnprotectedStore(client)
    book = RoomBook(store, load_library(), grace=60, idle=600)
    sync = redis.Redis.from_url(url)
    first = True

    def submit(record: RoomRecord) -> Sequence[ev.Event]:
        nonlocal first
        room = record.room
        assert room.round is not None
        cards = [c.id for c in room.hand(player_id)[: room.round.black.pick]]
        events = room.submit(player_id, cards)
        if first:  # both processes hold the same version here before either saves
            first = False
            sync.incr(barrier)
            deadline = time.monotonic() + 10
            while int(sync.get(barrier) or 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        return events

    await book.transact(code, submit)
    sys.stdout.write(f"conflicts={book.conflicts}\n")
    await client.aclose()


if __name__ == "__main__":
    url, code, player, barrier, protected = sys.argv[1:6]
    asyncio.run(main(url, code, player, barrier, protected == "1"))
