"""Regenerate docs/benchmarks.md and docs/img/*.png from bench/results/*.json.

`python -m bench` calls this after running the modules; `python -m bench.report` redraws the
page from the last results without measuring anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench._support import QUANTILES, REPO, RESULTS_DIR, fmt_us, load_results  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
IMG = REPO / "docs" / "img"
OWN = ("cache", "outage")


# --- small helpers ------------------------------------------------------------------------------
def table(header: list[str], rows: Iterable[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(spread: dict[str, float] | None, digits: int = 2) -> str:
    if not spread or spread.get("median") is None or math.isnan(spread["median"]):
        return ""
    return (f"{spread['median']:.{digits}f}× ({spread['min']:.{digits}f}–"
            f"{spread['max']:.{digits}f})")


def num(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "µs":
        return f"{fmt_us(value)} µs" if value < 10_000 else fmt_us(value)
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:g} {unit}"


def verdict(met: bool) -> str:
    return "✅ met" if met else "❌ **missed**"


def miss_by(t: dict[str, Any]) -> str:
    value, goal = t["value"], t["target"]
    if t["met"] or value is None or not goal:
        return ""
    if t["op"] == "<=":
        return f" by {value / goal:.2f}× the limit" if value / goal >= 1.5 else \
            f" by {100 * (value / goal - 1):.0f} %"
    return f" by {100 * (1 - value / goal):.0f} %"


# --- plots --------------------------------------------------------------------------------------
def plot_percentiles(latency: dict[str, Any], names: list[str], title: str,
                     path: Path) -> None:
    """Latency against percentile on a "nines" axis (HdrHistogram style), so tails show."""
    fig, ax = plt.subplots(figsize=(9.5, 5.4), dpi=110)
    points = [(q, 1 / (1 - q)) for q in QUANTILES if 0 < q <= 0.999]
    for index, name in enumerate(names):
        row = latency.get(name)
        if not row:
            continue
        values = dict(zip(QUANTILES, row["quantiles_us"], strict=True))
        anchor = not name.startswith("ours")
        ax.plot([x for _, x in points], [values[q] for q, _ in points], label=row["label"],
                linewidth=1.5, linestyle="--" if anchor else "-",
                color=plt.cm.tab10(index % 10))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = {2: "50%", 10: "90%", 100: "99%", 1000: "99.9%"}
    ax.set_xticks(list(ticks))
    ax.set_xticklabels(list(ticks.values()))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency per call (µs, log scale)")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(title)
    ax.legend(fontsize=7.5, loc="upper left", title="dashed: anchors, solid: ours",
              title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_throughput(throughput: dict[str, Any], levels: list[int], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8.5, 6.2), dpi=110)
    limit = throughput.get("_limit")
    if limit:  # redis-benchmark against the same server: what the machine can do at all
        ax.axhline(limit["ops_per_s"], color="black", linewidth=1.2, linestyle=":",
                   label=f"{limit['label']}: {limit['ops_per_s']:,.0f} GET/s")
    for name, levels_data in throughput.items():
        if name.startswith("_"):
            continue
        values = [levels_data[str(c)]["ops_per_s"] for c in levels]
        line = ax.plot(levels, values, marker="o", label=levels_data["label"],
                       linewidth=2.4 if name == "ours_async_near_off" else 1.5)[0]
        for c, value in zip(levels, values, strict=True):
            fallbacks = levels_data[str(c)].get("fallbacks", 0)
            if fallbacks:
                ax.plot([c], [value], marker="X", markersize=12, color=line.get_color())
                ax.annotate("pool exhausted:\nreads served\nfrom memory", (c, value),
                            textcoords="offset points", xytext=(-8, 8), ha="right",
                            fontsize=7.5, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(levels)
    ax.set_xticklabels([str(c) for c in levels])
    ax.set_xlabel("concurrent asyncio tasks")
    ax.set_ylabel("hits per second (log scale)")
    ax.set_title("Async hit throughput against concurrency (median of rounds)")
    ax.set_xlim(0.8, levels[-1] * 1.25)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_outage(scenarios: list[dict[str, Any]], path: Path) -> None:
    sync = [sc for sc in scenarios if sc["mode"] == "sync"]
    if not sync:
        return
    fig, axes = plt.subplots(1, len(sync), figsize=(6.2 * len(sync), 5), dpi=110, sharey=True)
    axes = list(axes) if isinstance(axes, Iterable) else [axes]
    for ax, sc in zip(axes, sync, strict=False):
        labels, ours_vals, naive_vals, naive_censored = [], [], [], []
        for phase in ("before", "during", "after"):
            for op in ("get", "set"):
                labels.append(f"{phase}\n{op}")
                ours_vals.append(sc[phase]["ours"][op]["p99_us"])
                naive = sc[phase].get("naive", {}).get(op, {})
                naive_vals.append(naive.get("p99_us") or math.nan)
                naive_censored.append(bool(naive.get("p99_is_lower_bound")))
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], ours_vals, width=0.4, label="ours (sync API)")
        ax.bar([i + 0.2 for i in x], naive_vals, width=0.4, label="naive redis-py defaults")
        for i, (value, censored) in enumerate(zip(naive_vals, naive_censored, strict=True)):
            if value >= 100_000:
                text = f"{'≥ ' if censored else ''}{value / 1e6:.1f} s"
                ax.annotate(text, (i + 0.2, value), ha="center", va="bottom", fontsize=8)
        ax.axhline(2000, color="red", linewidth=0.8, linestyle="--", label="2 ms target")
        ax.set_yscale("log")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(f"p99 latency, Redis {sc['kind']}")
        ax.grid(True, axis="y", which="both", alpha=0.25)
    axes[0].set_ylabel("p99 per call (µs, log scale)")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- sections --------------------------------------------------------------------------------
def code_id(result: dict[str, Any]) -> str:
    """One short digest of app/cache, video_cache.py and config.py as the run saw them."""
    digests = result["environment"].get("code_sha256", {})
    if not digests:
        return "unknown"
    joined = "".join(f"{path}:{digest};" for path, digest in sorted(digests.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def environment_section(results: list[dict[str, Any]]) -> str:
    env = results[0]["environment"]
    machine, versions = env["machine"], env["versions"]
    rows = [
        ["machine", f"{machine['nproc']} CPUs, {machine['cpu_model']}, "
                    f"{machine['memory_gib']} GiB RAM, Linux {machine['kernel']}"],
        ["load average at start", ", ".join(str(x) for x in machine["loadavg_at_start"])],
        ["python", f"{env['implementation']} {env['python']}"],
        ["redis-py / hiredis", f"{versions['redis-py']} / {versions['hiredis']} "
                               f"(parser: `{env['redis_py_parser']}`)"],
        ["redis-server", versions["redis-server"]],
        ["aiocache / cashews / cachetools", f"{versions['aiocache']} / {versions['cashews']} "
                                            f"/ {versions['cachetools']}"],
        ["matplotlib", versions["matplotlib"]],
        ["cache code measured", ", ".join(
            f"`{r['name']}`: `{code_id(r)}`" for r in results)
            + ("" if len({code_id(r) for r in results}) == 1 else
               " ⚠ the cache's source changed between these runs")],
        ["runs", "; ".join(f"`{r['name']}` {r['generated_at']} "
                           f"({r['config'].get('duration_s', '?')} s, "
                           f"BENCH_SCALE={r['environment']['bench_scale']})" for r in results)],
    ]
    return "## Machine and versions\n\n" + table(["", ""], rows, "ll")


def targets_section(cache: dict[str, Any] | None, outage: dict[str, Any] | None) -> str:
    rows = []
    for res in (cache, outage):
        if not res:
            continue
        for t in res["targets"]:
            if "reference, not a brief target" in t["detail"]:
                continue
            spread = t.get("spread")
            detail = t["detail"] + (f"; rounds {spread['min']:.2f}–{spread['max']:.2f}"
                                    if spread else "")
            rows.append([t["metric"], num(t["value"], t["unit"]),
                         f"{t['op'].replace('<=', '≤').replace('>=', '≥')} {t['target']:g}"
                         f" {t['unit']}", verdict(t["met"]) + miss_by(t), detail])
    missed = sum(1 for r in rows if "missed" in r[3])
    head = (f"## Targets\n\n{len(rows) - missed} of {len(rows)} targets met in this run"
            f"{'' if not missed else f'; {missed} missed'}.\n\n")
    return head + table(["metric", "measured", "target", "verdict", "detail"], rows, "lrrll")


def latency_table(latency: dict[str, Any], group: str) -> str:
    rows = []
    for row in latency.values():
        if row["group"] != group:
            continue
        stats = row["stats"]
        mean = row.get("batched_mean_us", stats["mean_us"])
        spread = row.get("ratio_batched_mean") or row.get("ratio_mean")
        anchor = {None: "anchor", "": "—"}.get(row["anchor"], ratio(spread))
        rows.append([row["label"], fmt_us(mean), fmt_us(stats["p50_us"]),
                     fmt_us(stats["p99_us"]), anchor,
                     ratio(row.get("ratio_p99")) if row["anchor"] else ""])
    return table(["variant", "mean µs", "p50 µs", "p99 µs", "mean × anchor (rounds)",
                  "p99 × anchor"], rows)


def _mean(lat: dict[str, Any], name: str) -> float:
    row = lat[name]
    return float(row.get("batched_mean_us", row["stats"]["mean_us"]))


def components_note(lat: dict[str, Any]) -> str:
    def p50(name: str) -> float:
        return float(lat[name]["stats"]["p50_us"])

    try:
        own = p50("ours_sync_fake_io") - p50("json_loads")
        many = p50("ours_many_fake_io") / 100 - p50("json_loads")
        gap = p50("ours_many_near_off") - p50("raw_mget")
    except KeyError:
        return ""
    return (f" By medians (p50): a hit with the near cache off costs the cache about "
            f"{own:.1f} µs on top of `json.loads`, whatever the network does; `get_many` costs "
            f"about {many:.1f} µs per key on top of `json.loads`, i.e. {100 * many:.0f} µs per "
            f"100 keys, against a gap of {gap:.0f} µs between ours and the raw MGET.")


def cache_section(res: dict[str, Any]) -> str:
    lat, cfg = res["latency"], res["config"]
    IMG.mkdir(parents=True, exist_ok=True)
    sync_names = ["raw_sync", "raw_sync_cache_client", "ours_sync_near_off", "ours_sync_near_on",
                  "raw_sync_miss", "ours_sync_miss", "cachetools", "ours_sync_memory"]
    async_names = ["raw_async", "ours_async_near_off", "ours_async_near_on", "aiocache_redis",
                   "cashews_redis", "ours_async_miss", "aiocache_mem", "cashews_mem",
                   "ours_async_memory"]
    plot_percentiles(lat, sync_names, "Sync API: latency per call by percentile (same "
                     "redis-server, same run)", IMG / "cache_latency_sync.png")
    plot_percentiles(lat, async_names, "Async API: latency per call by percentile "
                     "(concurrency 1)", IMG / "cache_latency_async.png")
    levels = [int(c) for c in cfg["concurrency"]]
    plot_throughput(res["throughput"], levels, IMG / "cache_throughput.png")

    tp_rows = []
    measured = {k: v for k, v in res["throughput"].items() if not k.startswith("_")}
    for name, data in measured.items():
        cells = []
        for c in levels:
            cell = data[str(c)]
            text = f"{cell['ops_per_s']:,.0f}"
            if name != "raw_async":
                text += f" ({cell['ratio_vs_raw']['median']:.2f}×)"
            if cell.get("fallbacks"):
                total = cfg["throughput_ops"] * cfg["rounds"]
                text += f" ⚠ {100 * cell['fallbacks'] / total:.0f} % from memory"
            cells.append(text)
        p99 = data["50"].get("p99_us")
        p99_text = "" if p99 is None else f"{p99:,.0f}"
        if p99 is not None and name != "raw_async":
            p99_text += f" ({data['50']['p99_ratio_vs_raw']['median']:.2f}×)"
        batch = data["50"].get("mean_batch")
        tp_rows.append([data["label"], *cells, p99_text,
                        "" if batch is None else f"{batch:.1f}"])
    limit = res["throughput"].get("_limit")
    limit_note = ""
    if limit:
        limit_note = (
            f" The physical limit is measured in the same run, against the same redis-server: "
            f"`redis-benchmark -c {limit['clients']} -n {limit['requests']:,} -t get` (C, 50 "
            f"connections, one key holding a value as large as our entries) before each round "
            f"reached {limit['ops_per_s']:,.0f} GET/s (median; rounds "
            f"{min(limit['rounds']):,.0f}–{max(limit['rounds']):,.0f}), and "
            f"{limit['pipelined_16_ops_per_s'] or 0:,.0f} GET/s with `-P 16` pipelining. It is "
            f"the dotted line in the plot.")
    busy = [(name, c, data[str(c)]) for name, data in measured.items()
            for c in levels if data[str(c)].get("fallbacks")]
    pools = cfg.get("pool_sizes", {})
    busy_note = ""
    for name, c, cell in busy:
        label = res["throughput"][name]["label"]
        busy_note += (
            f"\n\n⚠ At {c} tasks, *{label}* needed more connections than its pool holds "
            f"(`redis_max_connections={pools.get(name, '?')}`): redis-py raised "
            f"`MaxConnectionsError`, the cache mapped it to `RedisBusy`, served "
            f"{cell['fallbacks']:,} of {cfg['throughput_ops'] * cfg['rounds']:,} calls from "
            f"the in-process memory store instead of Redis and logged {cell['warnings']:,} "
            f"warnings. A fallback never awaits, so the task that hit it loops on without "
            f"yielding and keeps hitting the full pool: the ops/s of that cell is memory "
            f"throughput, not Redis throughput.")
    if pools:
        busy_note += ("\n\nPool sizes: " + "; ".join(f"{res['throughput'][k]['label']} → {v}"
                                                for k, v in pools.items()
                                                if k in res["throughput"]) + ".")
    checks = res.get("checks", {})
    near = checks.get("sync", {}).get("near_on", {})
    near_note = ""
    if near.get("hits"):
        near_note = (f" During the sync rounds the near-cache-on instance answered "
                     f"{near.get('near_hits', 0):,} of {near['hits']:,} hits from the near "
                     f"cache; the near-cache-off instance answered "
                     f"{checks['sync'].get('near_off', {}).get('near_hits', 0)} that way.")
    parts = [
        "## Cache: hit path, miss path, memory path",
        f"100 temporary entries (the JSON of a `CacheEntry`, as `set()` writes by default) are "
        f"read round robin from one private redis-server. Sync: {cfg['sync_calls_per_round']:,}"
        f" calls per variant and round, async: {cfg['async_calls_per_round']:,}, "
        f"`get_many`: {cfg['get_many_calls_per_round']:,}; {cfg['rounds']} rounds. "
        f"Anchors use the cache's timeouts ({cfg['socket_timeout']} s). Ratios are "
        f"*ours ÷ anchor* (lower is faster) as the median of the per-round ratios, with the "
        f"range over rounds in brackets.{near_note}",
        "### Sync API, hit and miss\n\n" + latency_table(lat, "sync_hit") + "\n\n"
        + latency_table(lat, "sync_miss"),
        "### Async API, hit and miss (concurrency 1)\n\n" + latency_table(lat, "async_hit")
        + "\n\n" + latency_table(lat, "async_miss"),
        "### Memory path\n\nThe anchor is cachetools `TTLCache` (sync) and aiocache "
        "`SimpleMemoryCache` (async). Means of local calls come from a loop without a timer per "
        "call.\n\n" + latency_table(lat, "sync_memory") + "\n\n"
        + latency_table(lat, "async_memory"),
        "### get_many of 100 keys against one MGET\n\n" + latency_table(lat, "sync_many")
        + "\n\n" + latency_table(lat, "async_many"),
        "### Where the time goes (no I/O)\n\nThe cache's own work, measured on an in-process "
        "fake client that answers GET/MGET from a dict, against the unavoidable "
        "`json.loads`." + components_note(lat) + "\n\n" + latency_table(lat, "components"),
        "![sync latency](img/cache_latency_sync.png)",
        "![async latency](img/cache_latency_async.png)",
        "### Throughput against concurrency\n\n"
        f"{cfg['throughput_ops']:,} hits shared by N asyncio tasks on one event loop, "
        f"{cfg['rounds']} rounds (the order of the variants rotates), median ops/s; "
        "× raw in brackets. *Ours, near cache off (batched)* is the default: calls that arrive "
        "while a Redis round trip is in flight share the next MGET (`CACHE_BATCH_MAX_KEYS`, "
        "docs/cache.md); the last column is how many calls a batched round trip carried on "
        "average at 50 tasks. The p99 column is per call at 50 tasks (from the call to its "
        "return to the task, queueing included). A near-cache hit never awaits I/O, so it "
        "never yields to the event loop: its tasks run one after the other and the number is "
        "the cost of the call, not of a concurrent workload." + limit_note + busy_note
        + "\n\n" + table(["variant", *[f"{c} tasks" for c in levels], "p99 µs at 50 tasks",
                           "calls per batch at 50"], tp_rows),
        "![throughput](img/cache_throughput.png)",
    ]
    return "\n\n".join(parts)


def _phase_cell(stats: dict[str, Any] | None, op: str) -> str:
    if not stats or op not in stats:
        return "—"
    s = stats[op]
    if s.get("p50_us") is None and s.get("p99_us") is None:
        return "—"
    p99 = fmt_us(s.get("p99_us"))
    if s.get("p99_is_lower_bound"):
        p99 = "≥ " + p99
    return f"{fmt_us(s.get('p50_us'))} / {p99}"


def outage_section(res: dict[str, Any]) -> str:
    cfg = res["config"]
    IMG.mkdir(parents=True, exist_ok=True)
    plot_outage(res["scenarios"], IMG / "outage_latency.png")
    rows, det_rows, naive_rows = [], [], []
    for sc in res["scenarios"]:
        where = f"{sc['mode']}, {sc['kind']}"
        for phase in ("before", "during", "after"):
            for who, stats in sc[phase].items():
                label = "ours" if who == "ours" else "naive (redis-py defaults)"
                rows.append([where, phase, label, _phase_cell(stats, "get"),
                             _phase_cell(stats, "set"), _phase_cell(stats, "set_permanent")])
        det, rec = sc["detect"], sc["recover"]
        det_rows.append([
            where, num(det.get("first_memory_call_s"), "s"), num(det.get("breaker_open_s"), "s"),
            f"{det['socket_timeout_s']} s", f"{sc['outage_s']:.1f} s", num(sc["heal_s"], "s"),
            num(rec.get("usable_s"), "s"), num(rec.get("write_landed_s"), "s"),
            str(rec.get("replayed", "")),
        ])
        naive = sc["during"].get("naive")
        if naive:
            for op in ("get", "set"):
                done = naive[op]["completed_s"]
                censored = sorted(c["running_for_s"] for c in naive["censored"]
                                  if c["op"] == op)
                late = sorted(c["returned_after_s"] for c in naive.get("late_returns", [])
                              if c["op"] == op)
                naive_rows.append([
                    where, op, str(len(done)),
                    ", ".join(f"{v:.2f}" for v in done) or "none",
                    ", ".join(f"≥ {v:.1f}" for v in censored) or "none",
                    ", ".join(f"{v:.1f}" for v in late) or "—"])
    parts = [
        "## Outage: latency before, during and after, detection and recovery",
        "Faults are real: **refused** kills our redis-server with SIGKILL and restarts it "
        "(empty) on the same port; **frozen** sends SIGSTOP, then SIGCONT. Each phase times "
        f"{cfg['phase_calls']:,} get + set pairs over {cfg['keys']} keys and "
        f"{cfg['permanent_sets']} permanent sets (the journal fsyncs those: "
        f"`cache_journal_fsync={cfg['journal_fsync']}`). The sync pass turns the near cache "
        "off so that a read before/after the outage is a Redis GET, like the naive client's; "
        "the async pass uses the server's defaults (near cache on: reads of hot keys are "
        "in-process) with the recovery probe as an asyncio task. The naive anchor is "
        "redis-py with its default settings in this version (5 s socket and connect "
        "timeouts, 10 retries with exponential backoff) and a dict on error; while Redis is "
        f"down, {cfg['naive_threads']} threads call it for {cfg['naive_cap_s']:g} s and calls "
        "still running then are reported as ≥ their running time (censored).",
        "### p50 / p99 per phase (µs)\n\n"
        + table(["scenario", "phase", "client", "get p50 / p99", "set p50 / p99",
                 "permanent set p50 / p99"], rows, "lllrrr"),
        "![outage latency](img/outage_latency.png)",
        "### Detection and recovery\n\nDetection: from the signal to the end of the first call "
        "that returned with the breaker open (traffic alternates get and set). Recovery: from "
        "the moment the server is back (restart returned / SIGCONT sent) to "
        "`core.redis_usable`, and to a write made through the cache being readable by another "
        "client.\n\n"
        + table(["scenario", "detected after", "breaker opened after", "socket timeout",
                 "outage", "restart took", "usable after", "write in Redis after",
                 "journal writes replayed (cumulative)"], det_rows, "lrrrrrrrr"),
    ]
    defaults = res.get("naive_defaults", {})
    bound = ""
    if defaults.get("socket_timeout_s") and defaults.get("retries") is not None:
        attempts = defaults["retries"] + 1
        worst = attempts * defaults["socket_timeout_s"]
        bound = (f" With these defaults (socket timeout {defaults['socket_timeout_s']:g} s, "
                 f"{defaults['retries']} retries, `{defaults['backoff']}` capped at "
                 f"{defaults.get('backoff_cap_s')} s), a call to a frozen Redis can wait "
                 f"{attempts} × {defaults['socket_timeout_s']:g} s = {worst:g} s plus backoff "
                 "before it falls back to the dict; the run stops waiting at the cap.")
    if naive_rows:
        parts.append("### The naive client while Redis is down\n\nSeconds per call, completed "
                     "and still running at the cap." + bound + "\n\n"
                     + table(["scenario", "op", "completed", "seconds (completed)",
                              "seconds (running at the cap)",
                              "those calls returned after (s, once Redis was back)"],
                             naive_rows, "llrlll"))
    return "\n\n".join(parts)


def render_section(res: dict[str, Any]) -> str:
    """bench_render's results (its run() returns them; the format is that module's)."""
    parts = []
    expected = {"360p": 0.3, "720p": 0.8}
    rows = []
    for name, row in res["render"].items():
        goal = row.get("expected_s", expected.get(name[:4]))
        rows.append([name, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}",
                     "" if goal is None else f"{goal:.2f}",
                     "" if goal is None else f"{row['median_s'] / goal:.2f}×",
                     f"{row.get('bytes', 0) / 1024:.0f}"])
    parts.append(table(["render", "median s", "min s", "expected s", "× expected", "KiB"],
                       rows))
    target = res.get("config", {}).get("lag_target_ms")
    pool_rows = []
    for p in res.get("pools", []):
        idle = p.get("idle_max_lag_ms")
        met = p.get("meets_target")
        pool_rows.append([
            p["resolution"], p["pool"], str(p["workers"]), f"{p['videos_per_s']:.2f}",
            f"{p['max_lag_ms']:.1f}", "" if idle is None else f"{idle:.2f}",
            "" if met is None else verdict(bool(met))])
    if pool_rows:
        parts.append("Event-loop lag while the pool renders (median over rounds of each "
                     "round's maximum), against the idle loop measured in the same round"
                     + (f"; target < {target:g} ms" if target else "") + ":")
        parts.append(table(["size", "pool", "workers", "videos/s", "max loop lag ms",
                            "idle max lag ms", "target"], pool_rows, "llrrrrl"))
    if (IMG / "render.png").exists():
        parts.append("![render](img/render.png)")
    return "\n\n".join(parts)


def other_section(name: str, res: dict[str, Any] | None, status: dict[str, Any]) -> str:
    head = f"## `bench_{name}`\n\n"
    state = status.get("status", "unknown")
    output = [line for line in status.get("output_tail", [])
              if not line.startswith("wrote ")]
    if state != "ok":
        text = head + f"Not measured in this run: {status.get('note', state)}."
        if output:
            text += "\n\nLast lines of its output:\n\n```text\n" + "\n".join(output) + "\n```"
        return text
    intro = (f"Maintained with bench/bench_{name}.py and run by `python -m bench` in the same "
             f"run ({status.get('seconds', '?')} s); numbers from bench/results/{name}.json.")
    parts = [head + intro]
    if name == "render" and res:
        try:
            parts.append(render_section(res))
            return "\n\n".join(parts)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # its format changed: fall back to the generic view
    if res and isinstance(res.get("targets"), list):
        rows = [[str(t.get("metric", "?")), str(t.get("value")),
                 f"{t.get('op', '')} {t.get('target', '')}", verdict(bool(t.get("met")))]
                for t in res["targets"] if isinstance(t, dict)]
        parts.append(table(["metric", "measured", "target", "verdict"], rows, "lrrl"))
    if output:
        parts.append("Its summary, as printed by the module:\n\n```text\n"
                     + "\n".join(output) + "\n```")
    elif not res:
        parts.append(f"The module ran but left no bench/results/{name}.json.")
    return "\n\n".join(parts)


def method_section() -> str:
    return """## How it is measured

* Every number comes from one `python -m bench` run on the machine below; each anchor is measured
  in the same run, against the same private `redis-server` (started on a free loopback port by
  `tests/support/redis_server.py`; Redis on 6379 is never used).
* Per-call latency is `time.perf_counter_ns()` around each call (the timer itself costs about
  {overhead} ns, included). Variants are interleaved in chunks of 250 calls in a rotating order,
  so that the noise of a shared 2-core machine hits every variant alike, and the whole
  comparison is repeated for {rounds} rounds. A statistic is the median over rounds; a ratio is the
  median of the per-round ratios, with the range over rounds in brackets. The means of calls
  that stay in the process (near cache, memory) come from a loop without a timer per call.
* redis-server runs on the same 2 cores as the client, so every Redis round trip includes a
  context switch: absolute µs are pessimistic, ratios are what the targets are about.
* Re-run with `make bench` (or `python -m bench`); one module alone with
  `python -m bench.bench_cache` / `python -m bench.bench_outage`; redraw this page from the last
  JSON with `python -m bench.report`. `BENCH_SCALE=0.1` makes a quick smoke run."""


def render(run_status: dict[str, Any] | None = None) -> Path:
    if run_status is None:
        try:
            run_status = json.loads((RESULTS_DIR / "_run.json").read_text())
        except (OSError, ValueError):
            run_status = {"modules": {}}
    modules: dict[str, Any] = run_status.get("modules", {})
    cache, outage = load_results("cache"), load_results("outage")
    present = [r for r in (cache, outage) if r]
    overhead = cache["config"]["timer_overhead_ns"] if cache else "?"
    parts = ["# Benchmarks",
             "Generated by `python -m bench` (`make bench`); do not edit by hand, the next run "
             "rewrites this page. Raw numbers: `bench/results/*.json`."]
    stale = [name for name in OWN if modules.get(f"bench_{name}", {}).get("status")
             not in (None, "ok")]
    if stale:
        parts.append("⚠ This run failed for " + ", ".join(f"`bench_{n}`" for n in stale)
                     + "; their sections below (if any) come from an earlier run.")
    if present:
        parts.append(environment_section(present))
        parts.append(targets_section(cache, outage))
    rounds = cache["config"]["rounds"] if cache else "?"
    parts.append(method_section().format(overhead=overhead, rounds=rounds))
    if cache:
        parts.append(cache_section(cache))
    if outage:
        parts.append(outage_section(outage))
    for module, status in sorted(modules.items()):
        name = module.removeprefix("bench_")
        if name in OWN:
            continue
        res = load_results(name) if status.get("status") == "ok" else None
        parts.append(other_section(name, res, status))
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n\n".join(parts) + "\n")
    return DOC


if __name__ == "__main__":
    print(f"wrote {render()}")
