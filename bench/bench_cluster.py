"""The cache on a real 3-primary Redis Cluster against raw redis-py `RedisCluster`.

Run alone: `.venv/bin/python -m bench --only bench_cluster`.

- hit path, near cache off: ours `get`/`aget` against a raw `RedisCluster.get` of the same key
  (sync and asyncio), one caller, interleaved in chunks, paired per round. Target ≤ 1.10×.
- `get_many(100)` across slots, near cache off: ours against the raw client's best equivalent
  in the same round: the faster of `mget_nonatomic` (one MGET per slot, pipelined per node)
  and a non-transactional pipeline of 100 GETs. Target ≤ 1.2×.
- recovery: a 3+3 cluster, a primary SIGKILLed while one caller writes permanent entries (500
  a second at most); the
  time until the cluster says `cluster_state:ok` again (its failover), until a raw
  `RedisCluster` SET on the dead primary's slots succeeds, and until our cache is back on Redis
  with its journal replayed.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from app.cache.keys import key_for
from app.services.video_cache import VideoCache
from bench._support import (
    capture_app_logs,
    combine_rounds,
    interleaved_async,
    interleaved_sync,
    make_settings,
    paired_ratio,
    print_latency,
    print_targets,
    run_and_record,
    scaled,
    summarize_ns,
)
from tests.support.topologies import ClusterTopology

NAME = "cluster"
ROUNDS = 5
CALLS = scaled(3000, 200)
MANY_CALLS = scaled(400, 40)
CHUNK = 50
MANY = 100
WRITE_INTERVAL = 0.002  # the recovery's write stream: 500 permanent writes a second at most


def _raw_options() -> dict[str, Any]:
    # The same fail-fast options as ours (app/cache/connection.py): no retries.
    return {"retry": Retry(NoBackoff(), 0), "socket_timeout": 0.25,
            "socket_connect_timeout": 0.25}


def _target(metric: str, value: float, op: str, goal: float, unit: str, detail: str,
            spread: dict[str, float] | None = None) -> dict[str, Any]:
    met = value <= goal if op == "<=" else value >= goal
    return {"metric": metric, "value": value, "op": op, "target": goal, "unit": unit,
            "met": met, "detail": detail, "spread": spread}


def _rounds(samples: list[dict[str, list[int]]]) -> dict[str, list[dict[str, float]]]:
    names = samples[0].keys()
    return {name: [summarize_ns(round_[name]) for round_ in samples] for name in names}


def _best_of(rounds_a: list[dict[str, float]], rounds_b: list[dict[str, float]]
             ) -> list[dict[str, float]]:
    """Per round, the faster (by mean) of two raw variants: the raw client's best."""
    return [a if a["mean_us"] <= b["mean_us"] else b for a, b in zip(rounds_a, rounds_b,
                                                                      strict=True)]


def latency(cluster: ClusterTopology, tmp: Path) -> dict[str, Any]:
    url = cluster.url()
    nodes = [ClusterNode("127.0.0.1", port) for port in cluster.ports]
    raw = RedisCluster(startup_nodes=nodes, **_raw_options())
    cache = VideoCache(make_settings(url, tmp / "lat", cache_near_enabled=False))
    black, whites = "Hit ____.", ["cluster bench"]
    cache.set(black, whites, "https://v.example/hit.mp4", permanent=True)
    hit_key = key_for(black, whites)
    combos = [(f"Many {i} ____.", ["cluster bench"]) for i in range(MANY)]
    for i, combo in enumerate(combos):
        cache.set(*combo, f"https://v.example/m{i}.mp4", permanent=True)
    many_keys = [key_for(*combo) for combo in combos]

    def raw_pipeline() -> object:
        pipe = raw.pipeline(transaction=False)
        for key in many_keys:
            pipe.get(key)
        return pipe.execute()

    sync_samples = [interleaved_sync({"raw_get": lambda: raw.get(hit_key),
                                      "ours_get": lambda: cache.get(black, whites)},
                                     CALLS, CHUNK) for _ in range(ROUNDS)]
    many_samples = [interleaved_sync({"raw_mget_nonatomic": lambda: raw.mget_nonatomic(many_keys),
                                      "raw_pipeline_gets": raw_pipeline,
                                      "ours_get_many": lambda: cache.get_many(combos)},
                                     MANY_CALLS, 10, warmup=20) for _ in range(ROUNDS)]
    assert cache.get_many(combos)[-1] == f"https://v.example/m{MANY - 1}.mp4"
    assert cache.get_stats()["cache_type"] == "redis"
    cache.close()
    raw.close()
    async_rounds = asyncio.run(_async_latency(url, tmp, cluster, black, whites, hit_key, combos,
                                              many_keys))
    rounds = {**_rounds(sync_samples), **_rounds(many_samples), **async_rounds}
    out: dict[str, Any] = {name: combine_rounds(r) for name, r in rounds.items()}
    out["raw_many_best"] = combine_rounds(_best_of(rounds["raw_mget_nonatomic"],
                                                   rounds["raw_pipeline_gets"]))
    out["araw_many_best"] = combine_rounds(_best_of(rounds["araw_mget_nonatomic"],
                                                    rounds["araw_pipeline_gets"]))
    return out


async def _async_latency(url: str, tmp: Path, cluster: ClusterTopology, black: str,
                         whites: list[str], hit_key: str, combos: list[tuple[str, list[str]]],
                         many_keys: list[str]) -> dict[str, list[dict[str, float]]]:
    raw = AsyncRedisCluster(startup_nodes=[AsyncClusterNode("127.0.0.1", port)
                                           for port in cluster.ports], **_raw_options())
    cache = VideoCache(make_settings(url, tmp / "alat", cache_near_enabled=False))
    await cache.astart()

    async def raw_pipeline() -> object:
        pipe = raw.pipeline(transaction=False)
        for key in many_keys:
            pipe.get(key)
        return await pipe.execute()

    hits = [await interleaved_async({"araw_get": lambda: raw.get(hit_key),
                                     "ours_aget": lambda: cache.aget(black, whites)},
                                    CALLS, CHUNK) for _ in range(ROUNDS)]
    many = [await interleaved_async({"araw_mget_nonatomic": lambda: raw.mget_nonatomic(many_keys),
                                     "araw_pipeline_gets": raw_pipeline,
                                     "ours_aget_many": lambda: cache.aget_many(combos)},
                                    MANY_CALLS, 10, warmup=20) for _ in range(ROUNDS)]
    assert (await cache.aget_many(combos))[0] == "https://v.example/m0.mp4"
    await cache.aclose()
    await raw.aclose()
    return {**_rounds(hits), **_rounds(many)}


def recovery(tmp: Path) -> dict[str, Any]:
    """Kill a primary of a 3+3 cluster during a stream of permanent writes."""
    cluster = ClusterTopology(tmp / "recovery", replicas_per_primary=1)
    cluster.start()
    try:
        cache = VideoCache(make_settings(cluster.url(), tmp / "rec",
                                         cache_probe_max_interval=0.2))
        assert cache.redis_reachable()
        victim = cluster.primaries()[0]
        (replica,) = cluster.replicas_of(victim)
        with victim.client() as client:  # a key on the victim's slots, for the raw client
            ranges = [(int(a), int(b)) for a, b, primary, *_ in client.cluster("slots")
                      if int(primary[1]) == victim.port]
        probe_key = next(key for key in (f"probe-{i}" for i in range(100_000))
                         if any(a <= key_slot(key.encode()) <= b for a, b in ranges))
        raw = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", s.port)
                                          for s in cluster.servers if s is not victim],
                           **_raw_options())
        marks: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if "raw" not in marks:
                        raw.set(probe_key, "x")
                        marks["raw"] = time.monotonic()
                except Exception:  # noqa: BLE001 - the dead primary's slots: ask again
                    pass
                try:
                    if "ok" not in marks and cluster.role(replica) == "master" \
                            and cluster.state_ok():
                        marks["ok"] = now
                except Exception:  # noqa: BLE001
                    pass
                if "ok" in marks and "raw" in marks:
                    return
                stop.wait(0.02)

        writes = 0
        watcher = threading.Thread(target=watch, daemon=True)
        killed = 0.0
        deadline = time.monotonic() + 60
        next_write = time.monotonic()
        while time.monotonic() < deadline:
            # Paced: a tight loop would fill the journal at memory speed during the outage,
            # and the recovery measured would be that of its replay.
            next_write += WRITE_INTERVAL
            time.sleep(max(0.0, next_write - time.monotonic()))
            cache.set(f"Rec {writes} ____.", ["cluster"], f"https://v.example/r{writes}.mp4",
                      permanent=True)
            writes += 1
            if writes == 200:
                cluster.kill(victim)
                killed = time.monotonic()
                watcher.start()
            if killed and "ours" not in marks and cache.core.redis_usable \
                    and cache.core.pending_writes == 0 and "ok" in marks:
                marks["ours"] = time.monotonic()
            if "ours" in marks and "raw" in marks:
                break
        stop.set()
        watcher.join(5)
        stats = cache.get_stats()
        cache.close()
        raw.close()
    finally:
        cluster.stop()
    return {
        "writes": writes,
        "cluster_ok_after_kill_s": marks.get("ok", float("nan")) - killed,
        "raw_set_ok_after_kill_s": marks.get("raw", float("nan")) - killed,
        "ours_back_after_kill_s": marks.get("ours", float("nan")) - killed,
        "ours_back_after_cluster_ok_s": marks.get("ours", float("nan"))
        - marks.get("ok", float("nan")),
        "replayed": stats["replayed"], "outages": stats["outages"],
    }


def build_targets(lat: dict[str, Any], rec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for api, ours, raw in (("sync", "ours_get", "raw_get"), ("async", "ours_aget", "araw_get")):
        spread = paired_ratio(lat[ours]["rounds"], lat[raw]["rounds"])
        rows.append(_target(f"{api} hit on Cluster, near cache off / raw RedisCluster GET "
                            "(mean, one caller)", spread["median"], "<=", 1.10, "×",
                            "median of per-round ratios", spread))
    for api, ours, best in (("sync", "ours_get_many", "raw_many_best"),
                            ("async", "ours_aget_many", "araw_many_best")):
        spread = paired_ratio(lat[ours]["rounds"], lat[best]["rounds"])
        rows.append(_target(f"{api} get_many(100) across slots / raw best (mget_nonatomic or "
                            "a pipeline of GETs)", spread["median"], "<=", 1.2, "×",
                            "median of per-round ratios", spread))
    rows.append(_target("cache back on Redis after cluster_state:ok (primary killed)",
                        rec["ours_back_after_cluster_ok_s"], "<=", 5.0, "s",
                        f"cluster ok {rec['cluster_ok_after_kill_s']:.2f} s after the kill"))
    return rows


def run() -> dict[str, Any]:
    logs = capture_app_logs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="punchline-bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        cluster = ClusterTopology(tmp / "lat-cluster")
        cluster.start()
        try:
            lat = latency(cluster, tmp)
        finally:
            cluster.stop()
        rec = recovery(tmp)
    return {"latency": lat, "recovery": rec, "targets": build_targets(lat, rec),
            "rounds": ROUNDS, "calls": CALLS, "many_calls": MANY_CALLS,
            "logs": logs.counts,
            "seconds": time.perf_counter() - started}


def print_summary(result: dict[str, Any]) -> None:
    print_latency(result["latency"])
    rec = result["recovery"]
    print(f"\nrecovery: cluster ok {rec['cluster_ok_after_kill_s']:.2f} s after the kill, "
          f"raw SET {rec['raw_set_ok_after_kill_s']:.2f} s, ours back "
          f"{rec['ours_back_after_kill_s']:.2f} s ({rec['ours_back_after_cluster_ok_s']:.2f} s "
          f"after cluster ok); {rec['writes']} writes, {rec['replayed']} replayed")
    print_targets(result["targets"], digits=2)


def main() -> dict[str, Any]:
    return run_and_record(NAME, run, print_summary)


if __name__ == "__main__":
    main()
