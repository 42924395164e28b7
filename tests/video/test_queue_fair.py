"""The fair-admission policy, in memory and on a real redis-server: priorities, rooms in turn,
speculative orders dropped first, deduplication, nothing lost between pop and enqueue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.video.combos import combination_of
from app.video.queue import RenderQueue
from app.video.queue_fair import FairBacklog
from app.video.queue_model import Priority, RenderOrder


def order(n: int, priority: Priority = Priority.WINNER, room: str = "A") -> RenderOrder:
    combo = combination_of(f"Fair {n}: _.", [f"white {n}"])
    if priority is Priority.WINNER:
        return RenderOrder.of(combo, priority, room=room, round=n)
    return RenderOrder.of(combo, priority, room=room)


def flood_then_honest() -> list[RenderOrder]:
    """Four rooms flood 10 wins each, then an honest room wins once."""
    flood = [order(100 * r + i, room=f"F{r}") for i in range(10) for r in range(4)]
    return [*flood, order(999, room="HONEST")]


def test_rooms_take_turns_and_priorities_come_first_in_memory() -> None:
    backlog = FairBacklog(speculative_max=2)
    backlog.push(order(1, Priority.SPECULATIVE))
    backlog.push(order(2, Priority.POPULAR, room="-"))
    for o in flood_then_honest():
        assert backlog.push(o)
    popped = [backlog.pop() for _ in range(len(backlog))]
    rooms = [o.room for o in popped if o is not None and o.priority is Priority.WINNER]
    assert rooms.index("HONEST") <= 4  # one turn of the four flooding rooms at most
    assert [o.priority for o in popped if o is not None][-2:] == [Priority.POPULAR,
                                                                   Priority.SPECULATIVE]


def test_speculative_orders_are_dropped_beyond_their_bound_and_winners_never() -> None:
    backlog = FairBacklog(speculative_max=2)
    assert [backlog.push(order(n, Priority.SPECULATIVE)) for n in range(4)] == [
        True, True, False, False]
    assert all(backlog.push(order(n)) for n in range(100))
    assert backlog.dropped == 2
    assert not backlog.push(order(5))  # the same job key waits once


@pytest.fixture
async def queue(tmp_path: Path, redis_url: str) -> AsyncIterator[RenderQueue]:
    q = RenderQueue(Settings(_env_file=None, redis_url=redis_url, data_dir=tmp_path,
                             video_queue_speculative_max=2))
    yield q
    await q.aclose()


async def _drain(queue: RenderQueue) -> list[RenderOrder]:
    out = []
    for p in Priority:
        while (o := await queue.backlog.pop(p)) is not None:
            out.append(o)
    return out


async def test_redis_backlog_keeps_the_policy(queue: RenderQueue) -> None:
    backlog = queue.backlog
    assert await backlog.push(order(1, Priority.SPECULATIVE)) == 1
    assert await backlog.push(order(2, Priority.SPECULATIVE)) == 1
    assert await backlog.push(order(3, Priority.SPECULATIVE)) == -1  # dropped
    for o in flood_then_honest():
        assert await backlog.push(o) == 1
    assert await backlog.push(order(999, room="HONEST")) == 0  # deduplicated
    assert await backlog.waiting(Priority.WINNER) == 41
    popped = await _drain(queue)
    winners = [o.room for o in popped if o.priority is Priority.WINNER]
    assert winners.index("HONEST") <= 4
    assert [o.priority for o in popped[-2:]] == [Priority.SPECULATIVE] * 2
    assert await backlog.waiting(Priority.WINNER) == 0
    assert await backlog.admitted_count(Priority.WINNER) == 41  # popped: admitted, not done


async def test_admission_is_bounded_and_winners_go_first(queue: RenderQueue) -> None:
    await queue.submit(order(1, Priority.SPECULATIVE))  # admitted at once: the queue is empty
    for n in range(10):
        await queue.submit(order(10 + n))
    assert await queue.saq.count("queued") == 4  # ADMIT_DEPTH for winners (1 speculative + 3)
    assert await queue.backlog.waiting(Priority.WINNER) == 7
    await queue.submit(order(2, Priority.SPECULATIVE))
    assert await queue.backlog.waiting(Priority.SPECULATIVE) == 1  # waits behind the winners
    stats = await queue.stats()
    assert stats["priorities"]["winner"]["waiting"] == 7
    assert stats["priorities"]["winner"]["admitted"] == 3
    assert stats["priorities"]["winner"]["oldest_age_seconds"] >= 0


async def test_an_admitted_order_whose_job_vanished_is_enqueued_again(queue: RenderQueue
                                                                      ) -> None:
    await queue.backlog.push(order(7))
    popped = await queue.backlog.pop(Priority.WINNER)  # the admitting instance dies here
    assert popped is not None and await queue.saq.job(popped.job_key) is None
    assert await queue.recover(older_than=0) == 1
    job = await queue.saq.job(popped.job_key)
    assert job is not None and job.kwargs == {"order": popped.to_dict()}
