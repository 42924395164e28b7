"""The local journal of winner orders: a dead process's file is adopted, and so is a file whose
adopter died after claiming it (real processes, killed for real)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from app.core.cards import Combination
from app.video.combos import combination_of
from app.video.queue_journal import OrderJournal
from app.video.queue_model import Priority, RenderOrder
from app.video.storage import _host, _process_start


def _combo(n: int) -> Combination:
    return combination_of(f"Journal test {n}: _.", [f"answer {n}"])


def _dead_tag() -> str:
    """`<pid>.<start>@<host>` of a process that ran and is gone."""
    process = subprocess.Popen(["sleep", "30"])
    start = _process_start(process.pid)
    process.kill()
    process.wait()
    return f"{process.pid}.{start}@{_host()}"


def _write(path: Path, *orders: RenderOrder) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"order": o.to_dict()}) + "\n" for o in orders))


def test_a_dead_process_journal_is_adopted_once(tmp_path: Path) -> None:
    order = RenderOrder.of(_combo(1), Priority.WINNER, room="ROOM", round=1)
    _write(tmp_path / f"{_dead_tag()}.jsonl", order)
    journal = OrderJournal(tmp_path)
    [(claimed, orders)] = journal.adopt_dead()
    assert [o.job_key for o in orders] == [order.job_key]
    assert ".adopted-" in claimed.name
    assert journal.adopt_dead() == [(claimed, orders)]  # still its own until submitted


def test_a_live_process_journal_is_left_alone(tmp_path: Path) -> None:
    order = RenderOrder.of(_combo(2), Priority.WINNER, room="ROOM", round=1)
    with subprocess.Popen(["sleep", "30"]) as alive:
        tag = f"{alive.pid}.{_process_start(alive.pid)}@{_host()}"
        _write(tmp_path / f"{tag}.jsonl", order)
        _write(tmp_path / f"{_dead_tag()}.jsonl.adopted-{tag}", order)  # its adopter lives
        assert OrderJournal(tmp_path).adopt_dead() == []
        alive.kill()


def test_a_claimed_journal_whose_adopter_died_is_adopted_again(tmp_path: Path) -> None:
    # The adopter renamed the dead owner's file, then was killed before its orders joined the
    # queue: without a second adoption those winner orders would wait in the folder for good.
    order = RenderOrder.of(_combo(3), Priority.WINNER, room="ROOM", round=2)
    _write(tmp_path / f"{_dead_tag()}.jsonl.adopted-{_dead_tag()}", order)
    journal = OrderJournal(tmp_path)
    [(claimed, orders)] = journal.adopt_dead()
    assert [o.job_key for o in orders] == [order.job_key]
    assert claimed.name.endswith(f".adopted-{journal.tag}")
    assert [p.name for p in tmp_path.iterdir()] == [claimed.name]
