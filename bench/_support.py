"""What every benchmark module shares: a private redis-server, timing loops, statistics, results.

Timing method (also written into docs/benchmarks.md):

* per-call latency: `time.perf_counter_ns()` around each call. Variants are interleaved in chunks
  (chunk 1 of every variant, then chunk 2 of every variant, in a rotating order), so drift of the
  machine (other processes on the 2 cores) hits every variant alike;
* this is repeated for several rounds; each statistic is the median over rounds, and each ratio
  is the median of the per-round ratios (a paired comparison inside the same round);
* for sub-10 µs calls the mean also comes from a batched loop without a timer per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
if str(REPO) not in sys.path:  # `tests.support` is imported from the repository root
    sys.path.insert(0, str(REPO))

from app.core.config import Settings  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

__all__ = ["RedisServer", "free_port"]

# Everything scales with BENCH_SCALE (e.g. 0.1 for a smoke run); 1.0 is the documented run.
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
QUANTILES = [q / 100 for q in range(0, 100)] + [0.995, 0.999, 1.0]


def scaled(n: int, minimum: int = 10) -> int:
    return max(minimum, int(n * SCALE))


def make_settings(redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url, data_dir=data_dir, **overrides)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """Our own redis-server on a free loopback port, stopped whatever happens."""
    server = RedisServer(workdir / "redis", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- statistics -------------------------------------------------------------------------------
def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def summarize_ns(samples_ns: Sequence[int]) -> dict[str, float]:
    """mean/p50/p90/p99/p99.9/max in µs of per-call samples in ns."""
    values = sorted(samples_ns)
    if not values:
        return {"n": 0}
    us = 1000.0
    return {
        "n": len(values),
        "mean_us": statistics.fmean(values) / us,
        "p50_us": quantile(values, 0.50) / us,
        "p90_us": quantile(values, 0.90) / us,
        "p99_us": quantile(values, 0.99) / us,
        "p999_us": quantile(values, 0.999) / us,
        "max_us": values[-1] / us,
    }


def quantile_curve_us(samples_ns: Sequence[int]) -> list[float]:
    """The values at QUANTILES, in µs: enough to redraw a CDF without the raw samples."""
    values = sorted(samples_ns)
    return [round(quantile(values, q) / 1000.0, 3) for q in QUANTILES]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def combine_rounds(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Median of every statistic over rounds, with the rounds kept for the record."""
    keys = [k for k in rounds[0] if k != "n"]
    summary: dict[str, Any] = {k: median([r[k] for r in rounds]) for k in keys}
    summary["n"] = sum(int(r["n"]) for r in rounds)
    summary["rounds"] = rounds
    return summary


def paired_ratio(rounds_a: list[dict[str, float]], rounds_b: list[dict[str, float]],
                 stat: str = "mean_us") -> dict[str, float]:
    """Median, min and max over rounds of a[stat] / b[stat], measured in the same round."""
    ratios = [a[stat] / b[stat] for a, b in zip(rounds_a, rounds_b, strict=True) if b[stat]]
    return {"median": median(ratios), "min": min(ratios), "max": max(ratios)}


# --- timing loops -----------------------------------------------------------------------------
def _rotated(names: list[str], shift: int) -> list[str]:
    shift %= len(names)
    return names[shift:] + names[:shift]


def _chunk_order(names: list[str], calls: int, chunk: int) -> Iterator[str]:
    """Which variant times its next chunk: every variant once per pass, in a rotating order."""
    for index in range(max(1, calls // chunk)):
        yield from _rotated(names, index)


def interleaved_sync(variants: dict[str, Callable[[], object]], calls: int, chunk: int,
                     warmup: int = 200) -> dict[str, list[int]]:
    """One round: `calls` timed calls per variant, interleaved in chunks; samples in ns."""
    clock = time.perf_counter_ns
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for name in _chunk_order(list(variants), calls, chunk):
        fn, out = variants[name], samples[name]
        for _ in range(chunk):
            start = clock()
            fn()
            out.append(clock() - start)
    return samples


async def interleaved_async(variants: dict[str, Callable[[], Awaitable[object]]], calls: int,
                            chunk: int, warmup: int = 200) -> dict[str, list[int]]:
    """The asyncio twin of `interleaved_sync`: each call awaited alone (concurrency 1)."""
    clock = time.perf_counter_ns
    for fn in variants.values():
        for _ in range(warmup):
            await fn()
    samples: dict[str, list[int]] = {name: [] for name in variants}
    for name in _chunk_order(list(variants), calls, chunk):
        fn, out = variants[name], samples[name]
        for _ in range(chunk):
            start = clock()
            await fn()
            out.append(clock() - start)
    return samples


def batched_mean_us(fn: Callable[[], object], calls: int) -> float:
    """Mean µs per call of a loop without a timer per call (for sub-10 µs calls)."""
    for _ in range(min(calls, 1000)):
        fn()
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls / 1000.0


async def batched_mean_us_async(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(min(calls, 1000)):
        await fn()
    start = time.perf_counter_ns()
    for _ in range(calls):
        await fn()
    return (time.perf_counter_ns() - start) / calls / 1000.0


def timer_overhead_ns(calls: int = 100_000) -> float:
    """Cost of the per-call timer itself (two perf_counter_ns calls and an append)."""
    clock, out = time.perf_counter_ns, []
    start = clock()
    for _ in range(calls):
        t = clock()
        out.append(clock() - t)
    return (clock() - start) / calls


def run_async(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- logs of the cache --------------------------------------------------------------------------
class LogCounter(logging.Handler):
    """Counts the cache's log records by level instead of printing them during a benchmark."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] = self.counts.get(record.levelname, 0) + 1
        self.first.setdefault(record.levelname, record.getMessage()[:200])

    def reset(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


def capture_app_logs() -> LogCounter:
    counter = LogCounter()
    app_logger = logging.getLogger("app")
    app_logger.handlers[:] = [counter]
    app_logger.setLevel(logging.INFO)
    app_logger.propagate = False
    return counter


# --- environment and results ----------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _redis_server_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except OSError:
        return "not installed"
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return math.nan


def _redis_parser() -> str:
    import redis

    client = redis.Redis()
    connection = client.connection_pool.make_connection()
    try:
        return type(getattr(connection, "_parser", None)).__name__
    finally:
        client.close()


def code_digests() -> dict[str, str]:
    """Short SHA-256 of the cache's source files: which code a result measured."""
    files = sorted((REPO / "app" / "cache").glob("*.py")) + [
        REPO / "app" / "services" / "video_cache.py", REPO / "app" / "core" / "config.py"]
    digests = {}
    for path in files:
        with contextlib.suppress(OSError):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            digests[str(path.relative_to(REPO))] = digest[:12]
    return digests


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": {
            "redis-py": _version("redis"),
            "hiredis": _version("hiredis"),
            "redis-server": _redis_server_version(),
            "aiocache": _version("aiocache"),
            "cashews": _version("cashews"),
            "cachetools": _version("cachetools"),
            "matplotlib": _version("matplotlib"),
        },
        "redis_py_parser": _redis_parser(),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "cpu_model": _cpu_model(),
            "memory_gib": _mem_total_gib(),
            "kernel": platform.release(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "bench_scale": SCALE,
        "code_sha256": code_digests(),
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """bench/results/<name>.json, with the environment and the time of the run."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        **data,
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def load_results(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def print_targets(targets: Sequence[dict[str, Any]], digits: int) -> None:
    """The summary's "targets" block: one line a target, met or MISS, values to `digits`."""
    print("\ntargets")
    for t in targets:
        verdict = "met " if t["met"] else "MISS"
        value = "n/a" if t["value"] is None else f"{t['value']:.{digits}f}"
        print(f"  [{verdict}] {t['metric']}: {value} {t['unit']} (target {t['op']} "
              f"{t['target']}) — {t['detail']}")


def run_and_record(name: str, run: Callable[[], dict[str, Any]],
                   print_summary: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A benchmark's `main()`: run it, write bench/results/<name>.json, print the summary."""
    result = run()
    path = write_results(name, result)
    print_summary(result)
    print(f"\nwrote {path}")
    return result


def fmt_us(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f} s"
    if value >= 10_000:
        return f"{value / 1000:.1f} ms"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_latency(latency: dict[str, dict[str, Any]]) -> None:
    """Mean, p50 and p99 per variant (µs), one line each."""
    print(f"{'variant':24s} {'mean':>8s} {'p50':>8s} {'p99':>8s}")
    for name, row in latency.items():
        print(f"{name:24s} {fmt_us(row['mean_us']):>8s} {fmt_us(row['p50_us']):>8s} "
              f"{fmt_us(row['p99_us']):>8s}")
