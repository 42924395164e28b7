"""What waiting for a replica (`WAIT 1 <ms>`, REDIS_WAIT_MS) costs per write.

Run alone: `.venv/bin/python -m bench --only bench_replication`.

A master with one replica (and a sentinel, unused here) on free loopback ports; clients talk to
the master directly. Interleaved in chunks, one caller, per round:

- the cache (sync): a permanent `set` with WAIT (the default) and with REDIS_WAIT_MS=0, and a
  temporary `set` (never waited for), near cache off;
- the game state (asyncio): a room save (`RedisRoomStore.save`, compare-and-set + history) of a
  record as large as a real one, with WAIT and without.

The budget (ours, not the issue's): at most 0.5 ms more per write, about one loopback round trip
to the replica and back with room to spare on a shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from app.cache.connection import async_client
from app.cache.replication import wait_ms_for
from app.services.video_cache import VideoCache
from app.state.redis_store import RedisRoomStore
from bench._support import (
    capture_app_logs,
    combine_rounds,
    interleaved_async,
    interleaved_sync,
    make_settings,
    median,
    print_latency,
    print_targets,
    run_and_record,
    scaled,
    summarize_ns,
)
from tests.support.topologies import SentinelTopology

NAME = "replication"
ROUNDS = 5
CALLS = scaled(1500, 100)
CHUNK = 50
ROOM_TEXT = "x" * 12_500  # a room record's size in Redis (bench_game)
BUDGET_US = 500.0


def _rounds(samples: list[dict[str, list[int]]]) -> dict[str, list[dict[str, float]]]:
    return {name: [summarize_ns(round_[name]) for round_ in samples] for name in samples[0]}


def cache_writes(url: str, tmp: Path) -> dict[str, list[dict[str, float]]]:
    waiting = VideoCache(make_settings(url, tmp / "wait", cache_near_enabled=False))
    plain = VideoCache(make_settings(url, tmp / "plain", cache_near_enabled=False,
                                     redis_wait_ms=0))
    counter = iter(range(10**9))

    def write(cache: VideoCache, permanent: bool) -> None:
        n = next(counter)
        cache.set(f"Write {n} ____.", ["replication"], f"https://v.example/{n}.mp4",
                  permanent=permanent)

    samples = [interleaved_sync({"cache_permanent_wait": lambda: write(waiting, True),
                                 "cache_permanent_no_wait": lambda: write(plain, True),
                                 "cache_temporary": lambda: write(waiting, False)},
                                CALLS, CHUNK) for _ in range(ROUNDS)]
    replicas = waiting.core.replicas
    assert replicas.confirmed > 0, "no permanent write waited for the replica"
    assert waiting.get_stats()["cache_type"] == "redis"
    waiting.close()
    plain.close()
    return _rounds(samples)


async def room_saves(url: str, tmp: Path) -> dict[str, list[dict[str, float]]]:
    settings = make_settings(url, tmp / "rooms")
    client = async_client(settings)
    waiting = RedisRoomStore(client, wait_ms_for(settings))
    plain = RedisRoomStore(client, 0)
    versions = {"BWAIT": 1, "BPLAIN": 1}
    for code in versions:
        assert await waiting.create(code, ROOM_TEXT, 3600)

    async def save(store: RedisRoomStore, code: str) -> None:
        assert await store.save(code, versions[code], ROOM_TEXT, [], 3600)
        versions[code] += 1

    samples = [await interleaved_async({"room_save_wait": lambda: save(waiting, "BWAIT"),
                                        "room_save_no_wait": lambda: save(plain, "BPLAIN")},
                                       CALLS, CHUNK) for _ in range(ROUNDS)]
    assert waiting.replicas.confirmed > 0, "no room save waited for the replica"
    await client.aclose()
    return _rounds(samples)


def _extra_us(rounds: dict[str, list[dict[str, float]]], a: str, b: str) -> dict[str, float]:
    diffs = [x["mean_us"] - y["mean_us"] for x, y in zip(rounds[a], rounds[b], strict=True)]
    return {"median": median(diffs), "min": min(diffs), "max": max(diffs)}


def build_targets(rounds: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    rows = []
    for what, a, b in (("permanent cache write", "cache_permanent_wait",
                        "cache_permanent_no_wait"),
                       ("room save", "room_save_wait", "room_save_no_wait")):
        spread = _extra_us(rounds, a, b)
        rows.append({"metric": f"WAIT's cost per {what} (mean with − without, one caller)",
                     "value": spread["median"], "op": "<=", "target": BUDGET_US, "unit": "µs",
                     "met": spread["median"] <= BUDGET_US,
                     "detail": "median of per-round differences", "spread": spread})
    return rows


def run() -> dict[str, Any]:
    logs = capture_app_logs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="punchline-bench-replication-") as tmp_name:
        tmp = Path(tmp_name)
        topo = SentinelTopology(tmp / "sentinel")
        topo.start()
        try:
            url = f"redis://127.0.0.1:{topo.master.port}/0"
            rounds = {**cache_writes(url, tmp), **asyncio.run(room_saves(url, tmp))}
        finally:
            topo.stop()
    return {"latency": {name: combine_rounds(r) for name, r in rounds.items()},
            "targets": build_targets(rounds), "rounds": ROUNDS, "calls": CALLS,
            "logs": logs.counts, "seconds": time.perf_counter() - started}


def print_summary(result: dict[str, Any]) -> None:
    print_latency(result["latency"])
    print_targets(result["targets"], digits=1)


def main() -> dict[str, Any]:
    return run_and_record(NAME, run, print_summary)


if __name__ == "__main__":
    main()
