"""Latency of get and set before, during and after a Redis outage, and how fast it is noticed.

Two real faults on our own redis-server: **refused** (the process is killed with SIGKILL, then
restarted on the same port, empty) and **frozen** (SIGSTOP, then SIGCONT). For each:

* p50/p99 of `get` and `set` (and of a permanent `set`, whose journal line is fsynced) before,
  during and after the outage;
* time to detect: from the signal to the first call that returns with the breaker open, against
  `settings.redis_socket_timeout`;
* time to recover: from the server being back (restart returned / SIGCONT sent) to
  `core.redis_usable` and to a write of ours being readable in Redis by another client.

Passes: ours through the sync API (near cache off, so every "before/after" read is a Redis GET
like the naive client's) and ours through the async API with the server's default settings (near
cache on, probe task on the event loop). The naive anchor is redis-py with DEFAULT settings (5 s
timeouts, 10 retries with backoff) and "try Redis, on error use a dict"; while Redis is down its
calls run in threads and are capped at NAIVE_CAP seconds.

Run alone with `python -m bench.bench_outage`.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from app.cache.keys import key_for
from app.services.video_cache import VideoCache
from bench._support import (
    RedisServer,
    capture_app_logs,
    fmt_us,
    free_port,
    make_settings,
    print_targets,
    quantile_curve_us,
    redis_server,
    run_and_record,
    scaled,
    summarize_ns,
)

NAME = "outage"
N_KEYS = 200
PHASE_CALLS = scaled(2_000, 50)  # get + set pairs per phase
PERMANENT_SETS = scaled(200, 10)
NAIVE_PHASE_CALLS = scaled(1_000, 50)
# Seconds a naive call may take while Redis is down before we stop waiting for it.
NAIVE_CAP = float(os.environ.get("BENCH_NAIVE_CAP", "10"))
NAIVE_THREADS = 3
MIN_OUTAGE = 3.0
DETECT_BOUND = 5.0
RECOVER_BOUND = 15.0
TARGET_P99_DOWN_US = 2_000.0
TARGET_RECOVERY_S = 5.0
TTL = 86_400


def combo(i: int) -> tuple[str, list[str]]:
    return f"Outage black card {i % N_KEYS} ___", [f"white {i % N_KEYS}"]


def url_for(i: int, tag: str) -> str:
    return f"https://cdn.example.com/videos/{tag}-{i}.mp4"


# --- the clients under test -------------------------------------------------------------------
class OursSync:
    mode = "sync"

    def __init__(self, cache: VideoCache) -> None:
        self.cache = cache

    @property
    def core(self) -> Any:
        return self.cache.core

    async def start(self) -> None:
        self.cache.get(*combo(0))

    async def get(self, i: int) -> object:
        return self.cache.get(*combo(i))

    async def set(self, i: int, tag: str = "v", permanent: bool = False) -> None:
        black, whites = combo(i)
        self.cache.set(black, whites, url_for(i, tag), permanent=permanent)

    async def set_combo(self, black: str, whites: list[str], url: str) -> None:
        self.cache.set(black, whites, url)

    async def close(self) -> None:
        self.cache.close()


class OursAsync(OursSync):
    mode = "async"

    async def start(self) -> None:
        await self.cache.astart()

    async def get(self, i: int) -> object:
        return await self.cache.aget(*combo(i))

    async def set(self, i: int, tag: str = "v", permanent: bool = False) -> None:
        black, whites = combo(i)
        await self.cache.aset(black, whites, url_for(i, tag), permanent=permanent)

    async def set_combo(self, black: str, whites: list[str], url: str) -> None:
        await self.cache.aset(black, whites, url)

    async def close(self) -> None:
        await self.cache.aclose()


class Naive:
    """redis-py with its DEFAULT settings; on any Redis error, a dict."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=port)  # defaults on purpose
        self.fallback: dict[str, str] = {}
        self.threads: list[threading.Thread] = []
        self.late: list[dict[str, Any]] = []  # censored calls, when they finally returned

    def defaults(self) -> dict[str, Any]:
        """The redis-py defaults the naive client runs with, as this version sets them."""
        kwargs = self.client.get_connection_kwargs()
        retry = kwargs.get("retry")
        backoff = getattr(retry, "_backoff", None)
        return {"socket_timeout_s": kwargs.get("socket_timeout"),
                "socket_connect_timeout_s": kwargs.get("socket_connect_timeout"),
                "retries": retry.get_retries() if retry is not None else None,
                "backoff": type(backoff).__name__,
                "backoff_cap_s": getattr(backoff, "_cap", None)}

    def get(self, i: int) -> object:
        key = key_for(*combo(i))
        try:
            value = self.client.get(key)
        except redis.RedisError:
            return self.fallback.get(key)
        return None if value is None else json.loads(value)

    def set(self, i: int, tag: str = "naive") -> None:
        key = key_for(*combo(i))
        value = json.dumps({"video_url": url_for(i, tag), "permanent": False})
        try:
            self.client.set(key, value, ex=TTL)
        except redis.RedisError:
            self.fallback[key] = value

    def measure(self, calls: int) -> dict[str, Any]:
        samples: dict[str, list[int]] = {"get": [], "set": []}
        clock = time.perf_counter_ns
        for j in range(calls):
            start = clock()
            self.get(j)
            samples["get"].append(clock() - start)
            start = clock()
            self.set(j)
            samples["set"].append(clock() - start)
        return {op: summarize_ns(s) for op, s in samples.items()}

    def measure_down(self, cap: float) -> dict[str, Any]:
        """NAIVE_THREADS threads alternate get/set; calls still running at `cap` are censored."""
        done: dict[str, list[float]] = {"get": [], "set": []}
        running: dict[int, tuple[str, float]] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def work(index: int) -> None:
            j = index
            while not stop.is_set():
                op = "get" if j % 2 == 0 else "set"
                start = time.perf_counter()
                with lock:
                    running[index] = (op, start)
                (self.get if op == "get" else self.set)(j)
                with lock:
                    running.pop(index, None)
                    took = time.perf_counter() - start
                    if not stop.is_set():
                        done[op].append(took)
                    else:
                        self.late.append({"op": op, "returned_after_s": round(took, 3)})
                j += NAIVE_THREADS

        began = time.perf_counter()
        for index in range(NAIVE_THREADS):
            thread = threading.Thread(target=work, args=(index,), daemon=True,
                                      name=f"naive-{index}")
            thread.start()
            self.threads.append(thread)
        time.sleep(cap)
        with lock:
            stop.set()
            now = time.perf_counter()
            stuck = [(op, round(now - start, 3)) for op, start in running.values()]
            censored = [{"op": op, "running_for_s": took} for op, took in stuck]
        result: dict[str, Any] = {"cap_s": cap, "wall_s": round(now - began, 3),
                                  "censored": censored}
        for op, values in done.items():
            values.sort()
            result[op] = {"n": len(values),
                          "completed_s": [round(v, 3) for v in values],
                          "p50_us": values[len(values) // 2] * 1e6 if values else None,
                          "max_us": values[-1] * 1e6 if values else None}
            # A call still running at the cap is slower than every completed one: with fewer
            # than 100 calls in all, p99 is the slowest call, censored or not.
            worst = [running for op_, running in stuck if op_ == op]
            slowest = max(values + worst) if values or worst else None
            result[op]["p99_us"] = None if slowest is None else slowest * 1e6
            result[op]["p99_is_lower_bound"] = bool(worst) and (slowest in worst)
        return result

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = any(t.is_alive() for t in self.threads)
        self.threads = [t for t in self.threads if t.is_alive()]
        return not alive

    def close(self) -> None:
        self.client.close()


# --- phases -------------------------------------------------------------------------------------
async def measure_ours(ours: OursSync, calls: int, tag: str) -> dict[str, Any]:
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {"get": [], "set": [], "set_permanent": []}
    before = dict(ours.core.counters.as_dict())
    for j in range(calls):
        start = clock()
        await ours.get(j)
        samples["get"].append(clock() - start)
        start = clock()
        await ours.set(j, tag)
        samples["set"].append(clock() - start)
    for j in range(PERMANENT_SETS):
        start = clock()
        await ours.set(j, tag + "-perm", permanent=True)
        samples["set_permanent"].append(clock() - start)
    after = ours.core.counters.as_dict()
    result: dict[str, Any] = {op: summarize_ns(s) for op, s in samples.items()}
    result["quantiles_us"] = {op: quantile_curve_us(s) for op, s in samples.items()}
    result["counters"] = {k: after[k] - before[k] for k in ("hits", "misses", "near_hits",
                                                             "fallbacks", "errors")}
    result["redis_usable_at_end"] = ours.core.redis_usable
    return result


async def detect(server: RedisServer, kind: str, ours: OursSync) -> dict[str, Any]:
    """Inject the fault, then alternate get/set until a call returns with the breaker open."""
    breaker = ours.core.breaker
    t0_mono = time.monotonic()
    t0 = time.perf_counter()
    if kind == "refused":  # SIGKILL: redis-server exits at once (SIGTERM waits for its cron)
        assert server.process is not None
        server.process.kill()
    else:
        server.freeze()
    calls, slowest, j = 0, 0.0, 0
    while time.perf_counter() - t0 < DETECT_BOUND:
        start = time.perf_counter()
        if j % 2 == 0:
            await ours.get(j)
        else:
            await ours.set(j, "detect")
        end = time.perf_counter()
        calls, j = calls + 1, j + 1
        slowest = max(slowest, end - start)
        if breaker.is_open:
            opened = breaker.opened_at
            return {"detected": True, "first_memory_call_s": end - t0,
                    "breaker_open_s": None if opened is None else opened - t0_mono,
                    "calls": calls, "slowest_call_s": slowest,
                    "detecting_call": "get" if (j - 1) % 2 == 0 else "set",
                    "socket_timeout_s": ours.core.settings.redis_socket_timeout}
        await asyncio.sleep(0)
    return {"detected": False, "calls": calls, "slowest_call_s": slowest,
            "socket_timeout_s": ours.core.settings.redis_socket_timeout}


async def heal(server: RedisServer, kind: str) -> float:
    """Bring the server back; returns how long that took (the restart, or ~0 for a thaw)."""
    start = time.perf_counter()
    if kind == "refused":
        await asyncio.to_thread(server.start)
    else:
        server.thaw()
    return time.perf_counter() - start


async def recover(ours: OursSync, checker: redis.Redis) -> dict[str, Any]:
    """Write every ~1 ms until Redis is usable and one of our writes is readable in Redis."""
    core = ours.core
    t0 = time.perf_counter()
    usable_at = landed_at = None
    writes = 0
    while time.perf_counter() - t0 < RECOVER_BOUND:
        black, whites = f"Recovery card {writes} ___", ["after the outage"]
        usable_before = core.redis_usable
        if usable_before and usable_at is None:
            usable_at = time.perf_counter()
        await ours.set_combo(black, whites, url_for(writes, "recovery"))
        writes += 1
        if usable_before and checker.get(key_for(black, whites)) is not None:
            landed_at = time.perf_counter()
            break
        await asyncio.sleep(0.001)
    return {
        "recovered": landed_at is not None,
        "usable_s": None if usable_at is None else usable_at - t0,
        "write_landed_s": None if landed_at is None else landed_at - t0,
        "writes": writes,
        "replayed": core.counters.replayed,
        "reconnects": core.counters.reconnects,
        "failed_probes_before_success": core.breaker.failed_probes,
    }


async def scenario(server: RedisServer, kind: str, ours: OursSync,
                   naive: Naive | None) -> dict[str, Any]:
    checker = server.client()
    result: dict[str, Any] = {"kind": kind, "mode": ours.mode}
    try:
        for i in range(N_KEYS):
            await ours.set(i, "seed")
        result["before"] = {"ours": await measure_ours(ours, PHASE_CALLS, "before")}
        if naive is not None:
            result["before"]["naive"] = naive.measure(NAIVE_PHASE_CALLS)
        fault_at = time.perf_counter()
        result["detect"] = await detect(server, kind, ours)
        if kind == "refused":
            await asyncio.to_thread(server.stop)  # reap the terminated process
        result["during"] = {"ours": await measure_ours(ours, PHASE_CALLS, "during")}
        if naive is not None:
            result["during"]["naive"] = await asyncio.to_thread(naive.measure_down, NAIVE_CAP)
        await asyncio.sleep(max(0.0, MIN_OUTAGE - (time.perf_counter() - fault_at)))
        result["outage_s"] = time.perf_counter() - fault_at
        result["heal_s"] = await heal(server, kind)
        result["recover"] = await recover(ours, checker)
        result["after"] = {"ours": await measure_ours(ours, PHASE_CALLS, "after")}
        if naive is not None:
            joined = await asyncio.to_thread(naive.join, 30.0)
            result["naive_threads_finished"] = joined
            result["during"]["naive"]["late_returns"] = list(naive.late)
            result["after"]["naive"] = naive.measure(NAIVE_PHASE_CALLS)
    finally:
        if server.process is not None:
            server.thaw()
        else:
            await asyncio.to_thread(server.start)
        checker.close()
    return result


async def run_pass(server: RedisServer, tmp: Path, mode: str, with_naive: bool,
                   kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    results = []
    for kind in kinds:
        server.flush()
        data_dir = tmp / f"{mode}-{kind}"
        if mode == "sync":
            settings = make_settings(server.url, data_dir, cache_near_enabled=False)
            ours: OursSync = OursSync(VideoCache(settings))
        else:
            ours = OursAsync(VideoCache(make_settings(server.url, data_dir)))
        naive = Naive(server.port) if with_naive else None
        try:
            await ours.start()
            results.append(await scenario(server, kind, ours, naive))
        finally:
            await ours.close()
            if naive is not None:
                naive.join(10.0)
                naive.close()
    return results


def build_targets(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for sc in scenarios:
        where = f"{sc['mode']} API, {sc['kind']}"
        during = sc["during"]["ours"]
        for op in ("get", "set", "set_permanent"):
            value = during[op]["p99_us"]
            rows.append({"metric": f"p99 {op} while down ({where})", "value": value,
                         "op": "<=", "target": TARGET_P99_DOWN_US, "unit": "µs",
                         "met": value <= TARGET_P99_DOWN_US,
                         "detail": f"p50 {fmt_us(during[op]['p50_us'])} µs"})
        landed = sc["recover"]["write_landed_s"]
        rows.append({"metric": f"recovery, back → write lands in Redis ({where})",
                     "value": landed, "op": "<=", "target": TARGET_RECOVERY_S, "unit": "s",
                     "met": landed is not None and landed <= TARGET_RECOVERY_S,
                     "detail": f"outage lasted {sc['outage_s']:.1f} s"})
        det = sc["detect"]
        value = det.get("first_memory_call_s")
        timeout = det["socket_timeout_s"]
        rows.append({"metric": f"detection, fault → first call served from memory ({where})",
                     "value": value, "op": "<=", "target": timeout + 0.05, "unit": "s",
                     "met": value is not None and value <= timeout + 0.05,
                     "detail": f"socket_timeout {timeout} s; reference, not a brief target"})
    return rows


def run() -> dict[str, Any]:
    logs = capture_app_logs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="punchline-outage-") as tmp_name:
        tmp = Path(tmp_name)
        with redis_server(tmp) as server:
            scenarios = asyncio.run(run_pass(server, tmp, "sync", True, ("refused", "frozen")))
            scenarios += asyncio.run(run_pass(server, tmp, "async", False,
                                              ("refused", "frozen")))
    probe = Naive(free_port())  # never connects: only reads the defaults of the client
    naive_defaults = probe.defaults()
    probe.close()
    return {
        "naive_defaults": naive_defaults,
        "config": {"keys": N_KEYS, "phase_calls": PHASE_CALLS,
                   "permanent_sets": PERMANENT_SETS, "naive_phase_calls": NAIVE_PHASE_CALLS,
                   "naive_cap_s": NAIVE_CAP, "naive_threads": NAIVE_THREADS,
                   "min_outage_s": MIN_OUTAGE, "journal_fsync": "permanent (default)",
                   "duration_s": round(time.perf_counter() - started, 1)},
        "scenarios": scenarios,
        "log_counts": logs.counts,
        "targets": build_targets(scenarios),
    }


def print_summary(result: dict[str, Any]) -> None:
    for sc in result["scenarios"]:
        print(f"\n== {sc['mode']} API, {sc['kind']} (outage {sc['outage_s']:.1f} s)")
        for phase in ("before", "during", "after"):
            for who, stats in sc[phase].items():
                cells = []
                for op in ("get", "set", "set_permanent"):
                    if op in stats and stats[op].get("p99_us") is not None:
                        bound = "≥ " if stats[op].get("p99_is_lower_bound") else ""
                        cells.append(f"{op} p50 {fmt_us(stats[op].get('p50_us'))} "
                                     f"p99 {bound}{fmt_us(stats[op]['p99_us'])}")
                print(f"  {phase:7s} {who:6s} " + " | ".join(cells))
        det, rec = sc["detect"], sc["recover"]
        print(f"  detect: first memory call {det.get('first_memory_call_s')!s:.6} s "
              f"(socket_timeout {det['socket_timeout_s']} s); recover: usable "
              f"{rec['usable_s']!s:.6} s, write landed {rec['write_landed_s']!s:.6} s")
    print_targets(result["targets"], digits=3)


def main() -> dict[str, Any]:
    return run_and_record(NAME, run, print_summary)


if __name__ == "__main__":
    main()
