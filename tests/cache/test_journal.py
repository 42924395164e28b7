"""The outage journal: shared by processes, nothing lost, disk errors never crash a caller."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from app.cache.entry import CacheEntry
from app.cache.journal import Journal, JournalRecord
from tests.cache.conftest import CacheFactory
from tests.support.redis_server import free_port


def record(index: int) -> JournalRecord:
    entry = CacheEntry.new(f"/videos/{index}.mp4", permanent=True)
    return JournalRecord(f"video:{index}", entry, None, entry.created_at)


def test_interleaved_claims_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cache-journal.jsonl"
    writer, replayer_a, replayer_b = Journal(path), Journal(path), Journal(path)
    writer.append(record(1))
    claim_a = replayer_a.claim()
    writer.append(record(2))  # lands in a fresh live journal, not in A's claim
    claim_b = replayer_b.claim()  # takes the new journal, and A's claim as an orphan
    replayer_a.release(claim_a)
    writer.append(record(3))
    replayed = {r.key for r in claim_a.records} | {r.key for r in claim_b.records}
    assert replayed == {"video:1", "video:2"}
    replayer_b.release(claim_b)
    assert [r.key for r in writer.pending()] == ["video:3"]
    claim_c = replayer_a.claim()
    assert [r.key for r in claim_c.records] == ["video:3"]
    replayer_a.release(claim_c)
    assert not writer.has_pending()


def _append_many(path: str, start: int) -> None:
    journal = Journal(Path(path), fsync="never")
    for index in range(start, start + 200):
        journal.append(record(index))


def test_processes_appending_while_claiming(tmp_path: Path) -> None:
    path = tmp_path / "cache-journal.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), n * 1000)) for n in range(3)]
    for process in writers:
        process.start()
    replayer = Journal(path)
    seen: set[str] = set()
    while any(p.is_alive() for p in writers):
        claim = replayer.claim()
        seen |= {r.key for r in claim.records}
        replayer.release(claim)
    for process in writers:
        process.join()
        assert process.exitcode == 0
    claim = replayer.claim()
    seen |= {r.key for r in claim.records}
    assert len(seen) == 600


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "cache-journal.jsonl"
    journal = Journal(path)
    journal.append(record(1))
    with open(path, "ab") as handle:
        handle.write(b'{"key": "video:2", "entry": {"video_url"')  # a crash mid-write
    assert [r.key for r in journal.pending()] == ["video:1"]


def test_unwritable_journal_never_crashes_a_caller(cache_factory: CacheFactory,
                                                   tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    cache = cache_factory(f"redis://127.0.0.1:{free_port()}", data_dir=blocker / "data")
    cache.set("outage", ["disk full"], "/videos/o.mp4", permanent=True)
    assert cache.get("outage", ["disk full"]) == "/videos/o.mp4"
    assert cache.delete("outage", ["disk full"]) is True
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory"
    assert stats["journal_errors"] >= 2


def targeted(index: int, target: str) -> JournalRecord:
    entry = CacheEntry.new(f"/videos/{index}.mp4", permanent=True)
    return JournalRecord(f"video:{index}", entry, None, entry.created_at, target)


def test_records_name_their_target_and_are_replayed_only_there(tmp_path: Path) -> None:
    path = tmp_path / "cache-journal.jsonl"
    here, there = Journal(path, target="a" * 16), Journal(path, target="b" * 16)
    here.append(targeted(1, "a" * 16))
    here.append(targeted(2, "b" * 16))
    assert b'"target":"' + b"a" * 16 in path.read_bytes()
    assert [r.key for r in here.pending()] == ["video:1"]
    claim = here.claim()
    assert [r.key for r in claim.records] == ["video:1"]
    here.release(claim)
    # The other target's write was set aside, not lost, and not pending here.
    assert not here.has_pending() and len(here.aside_files()) == 1
    assert [r.key for r in there.pending()] == ["video:2"]
    claim = there.claim()
    assert [r.key for r in claim.records] == ["video:2"]
    there.release(claim)
    assert not there.has_pending() and not list(tmp_path.glob("*.aside.*"))


def test_records_without_a_target_are_never_replayed(tmp_path: Path) -> None:
    path = tmp_path / "cache-journal.jsonl"
    path.write_text('{"key":"video:1","entry":null,"expires_at":null,'
                    '"at":"2026-01-01T00:00:00+00:00"}\n')
    journal = Journal(path, target="a" * 16)
    assert journal.pending() == []
    assert journal.claim().records == []
    assert [p.name.split(".")[3] for p in journal.aside_files()] == ["unknown"]
