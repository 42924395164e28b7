"""Local renderer benchmark: render time, pool throughput and event-loop lag.

    .venv/bin/python bench/bench_render.py      (or python -m bench --only bench_render)

* render time: `render_video` alone in this process, median of several runs, at 360p and 720p,
  silent and narrated (when espeak-ng is installed);
* event-loop lag: a probe coroutine sleeps 5 ms in a loop and records how late it wakes up,
  while a `LocalRenderer` renders videos in the background (thread pool and process pool, one
  worker). Each round measures the idle loop first (the anchor: what the machine's own noise
  costs), then the loaded loop; the table gives the median over rounds of each round's maximum;
* throughput: videos per second through the pool with 1 and `cpu_count` workers.

Prints a table; `main()` writes bench/results/render.json (and render.png with matplotlib).
`BENCH_SCALE=0.3` makes a quicker run. Target from the issue: max lag < 20 ms; expected render
times 0.3 s at 360p and 0.8 s at 720p.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.config import Settings  # noqa: E402
from app.video.local import LocalRenderer  # noqa: E402
from app.video.provider import VideoRequest  # noqa: E402
from app.video.render import RESOLUTIONS, RenderJob, render_video  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
EXPECTED = {"360p": 0.3, "720p": 0.8}
LAG_TARGET_MS = 20.0
BLACK = "What's the secret to a long and happy marriage? _ and _."
WHITES = ("Cats with opposable thumbs.", "A lifetime supply of 🍕 and regret.")


def scaled(n: int, minimum: int) -> int:
    return max(minimum, round(n * SCALE))


def median_render(resolution: str, runs: int, narration: bool, workdir: Path) -> dict[str, Any]:
    width, height = RESOLUTIONS[resolution]
    espeak = shutil.which("espeak-ng") if narration else None
    job = RenderJob(BLACK, WHITES, width, height, narration=espeak is not None, espeak=espeak)
    render_video(job, str(workdir / "warm.mp4"))  # fonts, codecs
    times = []
    for i in range(runs):
        started = time.perf_counter()
        render_video(job, str(workdir / f"r{i}.mp4"))
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs": runs, "bytes": (workdir / "r0.mp4").stat().st_size,
            "narrated": espeak is not None, "expected_s": EXPECTED[resolution],
            "ratio_to_expected": statistics.median(times) / EXPECTED[resolution]}


async def _probe(stop: asyncio.Event, lags: list[float], tick: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(tick)
        lags.append(max(0.0, loop.time() - before - tick) * 1000)


async def _idle(seconds: float) -> float:
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(stop, lags))
    await asyncio.sleep(seconds)
    stop.set()
    await probe
    return max(lags)


async def _loaded(renderer: LocalRenderer, videos: int, resolution: str, workdir: Path,
                  tag: str) -> tuple[float, float]:
    """(max lag ms, videos per second) while `videos` renders run in the background."""
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(stop, lags))
    requests = [VideoRequest(f"Benchmark card {tag}-{i}: _.", WHITES[:1], "video:" + "0" * 64,
                             resolution) for i in range(videos)]  # type: ignore[arg-type]
    started = time.perf_counter()
    await asyncio.gather(*(renderer.generate(r, workdir / f"{tag}-{i}.mp4")
                           for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - started
    stop.set()
    await probe
    return max(lags), videos / elapsed


async def pool_config(pool: str, workers: int, resolution: str, videos: int, rounds: int,
                      workdir: Path) -> dict[str, Any]:
    settings = Settings(_env_file=None, video_render_pool=pool, video_render_workers=workers,
                        video_narration=False, video_dir=workdir, redis_url="memory://")
    renderer = LocalRenderer(settings)
    await renderer.start()  # workers up before measuring
    idle, loaded, rates = [], [], []
    try:
        for r in range(rounds):
            idle.append(await _idle(0.5))
            lag, rate = await _loaded(renderer, videos, resolution, workdir, f"{pool}{r}")
            loaded.append(lag)
            rates.append(rate)
    finally:
        await renderer.aclose()
    return {"pool": pool, "workers": workers, "resolution": resolution, "videos": videos,
            "rounds": rounds, "videos_per_s": statistics.median(rates),
            "max_lag_ms": statistics.median(loaded), "worst_lag_ms": max(loaded),
            "idle_max_lag_ms": statistics.median(idle),
            "lag_over_idle": statistics.median(b / max(a, 0.01) for a, b in zip(idle, loaded,
                                                                                strict=True)),
            "meets_target": statistics.median(loaded) < LAG_TARGET_MS}


def run() -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    runs, rounds = scaled(9, 3), scaled(3, 1)
    results: dict[str, Any] = {
        "config": {"runs": runs, "rounds": rounds, "cpus": cpus, "scale": SCALE,
                   "lag_target_ms": LAG_TARGET_MS},
        "render": {}, "pools": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for resolution in ("360p", "720p"):
            for narration in (False, True):
                name = f"{resolution}{'+narration' if narration else ''}"
                results["render"][name] = median_render(resolution, runs, narration, workdir)
        for resolution, videos in (("360p", scaled(8, 3)), ("720p", scaled(4, 2))):
            for pool in ("thread", "process"):
                results["pools"].append(asyncio.run(
                    pool_config(pool, 1, resolution, videos, rounds, workdir)))
        if cpus > 1:
            for pool in ("thread", "process"):
                results["pools"].append(asyncio.run(
                    pool_config(pool, cpus, "360p", scaled(12, 4), 1, workdir)))
    return results


def print_summary(results: dict[str, Any]) -> None:
    config = results["config"]
    print(f"\nLocal renderer, {config['cpus']} CPU(s), Python {platform.python_version()}\n")
    print(f"{'render':<18}{'median s':>10}{'min s':>9}{'expected':>10}{'ratio':>8}{'KiB':>8}")
    for name, row in results["render"].items():
        print(f"{name:<18}{row['median_s']:>10.3f}{row['min_s']:>9.3f}{row['expected_s']:>10.2f}"
              f"{row['ratio_to_expected']:>8.2f}{row['bytes'] / 1024:>8.0f}")
    print(f"\n{'size':<6}{'pool':<9}{'workers':>8}{'videos/s':>10}{'max lag ms':>12}"
          f"{'worst ms':>10}{'idle ms':>9}{'x idle':>8}")
    for row in results["pools"]:
        print(f"{row['resolution']:<6}{row['pool']:<9}{row['workers']:>8}"
              f"{row['videos_per_s']:>10.2f}{row['max_lag_ms']:>12.2f}{row['worst_lag_ms']:>10.2f}"
              f"{row['idle_max_lag_ms']:>9.2f}{row['lag_over_idle']:>8.1f}")
    print(f"\nmax lag = median over rounds of each round's maximum; target < {LAG_TARGET_MS:g} ms")


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(results["render"])
    left.bar(names, [results["render"][n]["median_s"] for n in names])
    left.set_ylabel("median render time (s)")
    left.tick_params(axis="x", rotation=20)
    labels = [f"{r['resolution']} {r['pool']}x{r['workers']}" for r in results["pools"]]
    right.bar(labels, [r["max_lag_ms"] for r in results["pools"]], label="rendering")
    right.bar(labels, [r["idle_max_lag_ms"] for r in results["pools"]], label="idle (anchor)")
    right.axhline(LAG_TARGET_MS, color="red", linestyle="--", label="target")
    right.set_ylabel("max event-loop lag (ms)")
    right.tick_params(axis="x", rotation=30)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    results = run()
    print_summary(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"name": "render", "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime()),
               "environment": {"python": platform.python_version(),
                               "platform": platform.platform()}, **results}
    (RESULTS / "render.json").write_text(json.dumps(payload, indent=1) + "\n")
    plot(results, RESULTS / "render.png")


if __name__ == "__main__":
    main()
