"""Game load: many simulated players against ONE real server process.

    .venv/bin/python bench/bench_game.py [--rooms 50 --players 4 ...]   (or python -m bench)

The server is the real one, `python -m uvicorn app.main:socket_app` on 127.0.0.1 (started by
`tests/support/app_server.py`), on its own redis-server on a free port, with VIDEO_PROVIDER=local:
every round's winner is really rendered (in the render pool, whose workers run at nice +10).

Clients are real `socketio.AsyncClient`s (websocket transport), all in one asyncio loop per
client process (`--client-procs`, default 1). Each room has one host and `players - 1` guests;
every player acts only on what its own connection received (its `hand`, the `room_state`): the
non-czars submit `pick` random cards of their hand, the czar picks a random submission, the host
starts a new game after `game_over`. Two timed phases follow the set-up:

* **paced**: each player "thinks" U(0.5, 1.5) × `--think` seconds before acting (default 1 s,
  so a room plays a round every ~2.3 s, 10-20× faster than people do). The p99 target
  (< 50 ms for every acknowledged event with 200 clients) is checked on this phase;
* **flat out**: nobody thinks; rounds/s is the capacity of the box (clients and server share the
  2 cores, so this is a lower bound of the server alone), latency is the latency at saturation.

Measured: time from emit to ack of every event (`sio.call`), per event and phase; rounds/s; the
server's VmRSS idle / after the connections / after the rooms / after dealing (memory per room);
CPU of the server process, of its render workers, of redis-server and of each client process
(from /proc, over each phase); the event-loop lag of the client processes (a late client inflates
the measured round trip, so it is reported next to it).

`run(quick=False) -> dict` (bench/results/game.json through `python -m bench`),
`print_summary(results)`. `--quick` (or BENCH_SCALE < 0.5) is a 10-room smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import socketio  # noqa: E402

from bench._support import SCALE, quantile, write_results  # noqa: E402
from tests.support.app_server import AppServer, start_app_server  # noqa: E402

NAME = "game"
TARGET_P99_MS = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
ACK_TIMEOUT = 15.0
BARRIER_TIMEOUT = 180.0
SHUTDOWN_GRACE = 10.0  # seconds between SIGTERM and SIGKILL, as in tests/support
WINDOW = 10.0  # seconds of the latency-over-time series


@dataclass
class Config:
    rooms: int = 50
    players: int = 4
    client_procs: int = 1
    paced_seconds: float = 30.0
    flat_seconds: float = 20.0
    think: float = 1.0  # mean seconds a player thinks before acting, paced phase
    speculative: bool = False  # SPECULATIVE_RENDER
    render_workers: int = 1  # VIDEO_RENDER_WORKERS
    narration: bool = False  # VIDEO_NARRATION
    log_level: str = "INFO"
    connect_concurrency: int = 25
    score_limit: int = 50
    hand_size: int = 10

    @property
    def clients(self) -> int:
        return self.rooms * self.players

    def server_env(self) -> dict[str, str]:
        return {
            "LOG_LEVEL": self.log_level,
            "VIDEO_PROVIDER": "local",
            "SPECULATIVE_RENDER": str(self.speculative).lower(),
            "VIDEO_RENDER_WORKERS": str(self.render_workers),
            "VIDEO_NARRATION": str(self.narration).lower(),
            "PREGEN_ENABLED": "false",
            "RECONNECT_GRACE_SECONDS": "60",
        }


def quick_config() -> Config:
    return Config(rooms=10, paced_seconds=6.0, flat_seconds=5.0)


# --- /proc --------------------------------------------------------------------------------------
def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the render pool's forkserver and its workers)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = proc_ppid(int(entry.name))
            if parent is not None:
                children[parent].append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(children.get(child, []))
    return out


def machine_cpu() -> dict[str, float]:
    """Jiffies of the whole machine, from the first line of /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return {"busy": (user + nice + system + irq + softirq) / CLK_TCK,
            "idle": (idle + iowait) / CLK_TCK, "steal": steal / CLK_TCK}


def all_processes_cpu() -> dict[int, float]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            out[int(entry.name)] = proc_cpu_seconds(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return "?"
    return raw.decode("utf-8", "replace")[:120] or "?"


def busiest_others(before: dict[int, float], after: dict[int, float], wall: float,
                   ours: set[int]) -> list[dict[str, Any]]:
    """The processes that are not part of the benchmark and used the CPU meanwhile."""
    rows: list[tuple[float, int]] = []
    for pid, cpu in after.items():
        used = cpu - before.get(pid, 0.0)
        if pid not in ours and used / wall >= 0.02:
            rows.append((round(100 * used / wall, 1), pid))
    rows.sort(reverse=True)
    return [{"pid": pid, "cpu_pct": pct, "cmd": cmdline(pid)} for pct, pid in rows[:5]]


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuMeter:
    """CPU seconds of the server, of its descendants (render pool) and of redis-server."""

    def __init__(self, server_pid: int, redis_pid: int) -> None:
        self.server_pid, self.redis_pid = server_pid, redis_pid
        self.dead_children = 0.0  # CPU of descendants seen before that have exited since
        self.seen: dict[int, float] = {}

    def read(self) -> dict[str, float]:
        children = 0.0
        alive = set(descendants(self.server_pid))
        for pid in list(self.seen):
            if pid not in alive:
                self.dead_children += self.seen.pop(pid)
        for pid in alive:
            self.seen[pid] = proc_cpu_seconds(pid)
            children += self.seen[pid]
        machine = machine_cpu()
        return {"t": time.monotonic(), "server": proc_cpu_seconds(self.server_pid),
                "render": children + self.dead_children,
                "redis": proc_cpu_seconds(self.redis_pid),
                "machine_busy": machine["busy"], "machine_steal": machine["steal"]}


def cpu_between(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    wall = b["t"] - a["t"]
    keys = ("server", "render", "redis", "machine_busy", "machine_steal")
    return {f"{k}_cpu_pct": round(100 * (b[k] - a[k]) / wall, 1) for k in keys}


# --- statistics ---------------------------------------------------------------------------------
def summarize_ms(samples: list[float]) -> dict[str, Any]:
    values = sorted(samples)
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean_ms": round(statistics.fmean(values), 2),
            "p50_ms": round(quantile(values, 0.50), 2), "p90_ms": round(quantile(values, 0.90), 2),
            "p99_ms": round(quantile(values, 0.99), 2), "max_ms": round(values[-1], 2)}


# --- the simulated players (client processes) ---------------------------------------------------
@dataclass
class Schedule:
    """Monotonic times (system-wide on Linux, so shared by every process) of the phases."""

    paced_at: float = math.inf
    flat_at: float = math.inf
    stop_at: float = math.inf

    def phase(self, now: float) -> str:
        if now < self.paced_at:
            return "setup"
        if now < self.flat_at:
            return "paced"
        if now < self.stop_at:
            return "flat"
        return "drain"


@dataclass
class Recorder:
    schedule: Schedule
    # every acked RTT of the timed phases by 10 s window since the paced phase started
    windows: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    acks: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    errors: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    rounds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    videos: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    games: int = 0

    async def call(self, sio: socketio.AsyncClient, event: str, data: Any = None
                   ) -> dict[str, Any] | None:
        started = time.monotonic()
        phase = self.schedule.phase(started)
        try:
            ack: dict[str, Any] = await sio.call(event, data, timeout=ACK_TIMEOUT)
        except Exception as exc:  # socketio.exceptions.TimeoutError, disconnected, ...
            self.errors[phase][f"{event}:{type(exc).__name__}"] += 1
            return None
        rtt = (time.monotonic() - started) * 1000
        self.acks[phase][event].append(rtt)
        if phase in ("paced", "flat"):
            self.windows[int((started - self.schedule.paced_at) // WINDOW)].append(rtt)
        if not ack.get("ok"):
            self.errors[phase][f"{event}:{ack.get('error', {}).get('code')}"] += 1
        return ack


class Bot:
    """One player: acts only on what its own connection received."""

    def __init__(self, url: str, seat: int, name: str, rec: Recorder, cfg: Config,
                 rng: random.Random) -> None:
        self.url, self.seat, self.name = url, seat, name
        self.rec, self.cfg, self.rng = rec, cfg, rng
        self.sio = socketio.AsyncClient(reconnection=False)
        self.player_id = ""
        self.room_code = ""
        self.state: dict[str, Any] | None = None
        self.hand: dict[str, Any] | None = None
        self.armed = False
        self.busy = False
        self.done: set[tuple[str, int, int]] = set()  # (action, game, round) already taken
        self.last_key = ("", 0, 0)
        self.games_over = 0
        self.restarts = 0
        self.first_state = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.sio.on("room_state", self._on_state)
        self.sio.on("hand", self._on_hand)
        self.sio.on("round_won", self._on_round_won)
        self.sio.on("game_over", self._on_game_over)
        self.sio.on("video_ready", self._on_video_ready)
        self.sio.on("video_failed", self._on_video_failed)

    # events
    async def _on_state(self, data: dict[str, Any]) -> None:
        self.state = data
        if data.get("phase") == "submitting":
            self.first_state.set()
        self.kick()

    async def _on_hand(self, data: dict[str, Any]) -> None:
        self.hand = data
        self.kick()

    async def _on_round_won(self, data: dict[str, Any]) -> None:
        pass

    async def _on_game_over(self, data: dict[str, Any]) -> None:
        self.games_over += 1
        if self.seat == 0:
            self.rec.games += 1
        self.kick()

    async def _on_video_ready(self, data: dict[str, Any]) -> None:
        if self.seat == 0:
            self.rec.videos[self.rec.schedule.phase(time.monotonic()) + ":ready"] += 1

    async def _on_video_failed(self, data: dict[str, Any]) -> None:
        if self.seat == 0:
            self.rec.videos[self.rec.schedule.phase(time.monotonic()) + ":failed"] += 1

    # actions
    def next_action(self) -> tuple[str, Any] | None:
        s, h = self.state, self.hand
        if s is None:
            return None
        rnd = s["round"]
        game = self.games_over  # round numbers start again at 1 in a new game
        if s["phase"] == "submitting" and s["czar_id"] != self.player_id:
            me = next((p for p in s["players"] if p["id"] == self.player_id), None)
            if (me is None or me["submitted"] or h is None or h["round"] != rnd
                    or ("submit", game, rnd) in self.done):
                return None
            pick = s["black_card"]["pick"]
            cards = self.rng.sample([c["id"] for c in h["cards"]], pick)
            self.last_key = ("submit", game, rnd)
            self.done.add(self.last_key)
            return "submit_cards", {"card_ids": cards}
        if s["phase"] == "judging" and s["czar_id"] == self.player_id and s["submissions"]:
            if ("pick", game, rnd) in self.done:
                return None
            self.last_key = ("pick", game, rnd)
            self.done.add(self.last_key)
            chosen = self.rng.choice(s["submissions"])
            return "pick_winner", {"submission_id": chosen["submission_id"]}
        if s["phase"] == "game_over" and self.seat == 0 and self.games_over > self.restarts:
            self.restarts += 1
            return "start_game", None
        return None

    def kick(self) -> None:
        if not self.armed or self.busy:
            return
        if time.monotonic() >= self.rec.schedule.stop_at:
            return
        action = self.next_action()
        if action is None:
            return
        self.busy = True
        task = asyncio.get_running_loop().create_task(self._act(*action))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _act(self, event: str, data: Any) -> None:
        try:
            if self.rec.schedule.phase(time.monotonic()) == "paced":
                await asyncio.sleep(self.cfg.think * self.rng.uniform(0.5, 1.5))
            ack = await self.rec.call(self.sio, event, data)
            if event == "pick_winner" and ack is not None and ack.get("ok"):
                self.rec.rounds[self.rec.schedule.phase(time.monotonic())] += 1
            if ack is not None and ack.get("error", {}).get("code") == "rate_limited":
                # The server's per-connection limit (20 events/s): a fast room reaches it
                # flat out. Try again once the bucket has a token, as a real client would.
                await asyncio.sleep(0.1)
                self.done.discard(self.last_key)
                if event == "start_game":
                    self.restarts -= 1
        finally:
            self.busy = False
        self.kick()  # the state may have moved on while we thought

    # set-up
    async def connect(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=20)

    async def create(self) -> None:
        settings = {"score_limit": self.cfg.score_limit, "hand_size": self.cfg.hand_size,
                    "max_players": max(3, self.cfg.players)}
        ack = await self.rec.call(self.sio, "create_room", {"name": self.name,
                                                            "settings": settings})
        if ack is None or not ack.get("ok"):
            raise RuntimeError(f"create_room failed: {ack}")
        self.player_id, self.room_code = ack["player_id"], ack["room_code"]

    async def join(self, code: str) -> None:
        ack = await self.rec.call(self.sio, "join_room", {"room_code": code, "name": self.name})
        if ack is None or not ack.get("ok"):
            raise RuntimeError(f"join_room failed: {ack}")
        self.player_id, self.room_code = ack["player_id"], ack["room_code"]


async def loop_lag_probe(schedule: Schedule, out: dict[str, list[float]], stop: asyncio.Event,
                         interval: float = 0.02) -> None:
    """How late the client's event loop wakes up: a busy client inflates measured RTTs."""
    while not stop.is_set():
        started = time.monotonic()
        await asyncio.sleep(interval)
        now = time.monotonic()
        out[schedule.phase(now)].append((now - started - interval) * 1000)


async def ping_probe(url: str, schedule: Schedule, out: dict[str, list[float]],
                     stop: asyncio.Event, interval: float = 0.1) -> None:
    """A connection outside the game sends an event the server does not know, 10 times a
    second: its ack (`unknown_event`) goes through the transport, the rate limiter and the
    dispatcher but no game logic and no broadcast, so its round trip is the floor under the
    game's events (what the server's event loop and the transport alone cost at this load)."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, transports=["websocket"], wait_timeout=20)
    try:
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(Exception):
                await sio.call("bench_ping", {}, timeout=ACK_TIMEOUT)
                out[schedule.phase(started)].append((time.monotonic() - started) * 1000)
            await asyncio.sleep(interval)
    finally:
        await sio.disconnect()


def wait_barrier(barrier: Any) -> None:
    barrier.wait(timeout=BARRIER_TIMEOUT)


async def client_main(url: str, cfg: Config, rooms: int, proc_index: int, barrier: Any,
                      schedule_q: Any) -> dict[str, Any]:
    rng = random.Random(1000 + proc_index)
    schedule = Schedule()
    rec = Recorder(schedule)
    lag: dict[str, list[float]] = defaultdict(list)
    stop_probe = asyncio.Event()
    probe = asyncio.create_task(loop_lag_probe(schedule, lag, stop_probe))
    pings: dict[str, list[float]] = defaultdict(list)
    pinger = (asyncio.create_task(ping_probe(url, schedule, pings, stop_probe))
              if proc_index == 0 else None)
    tables = [[Bot(url, seat, f"P{proc_index}r{r}s{seat}", rec, cfg, rng)
               for seat in range(cfg.players)] for r in range(rooms)]
    bots = [b for t in tables for b in t]
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    setup: dict[str, float] = {}

    async def gated(coro: Any) -> None:
        async with gate:
            await coro

    try:
        started = time.monotonic()
        await asyncio.gather(*(gated(b.connect()) for b in bots))
        setup["connect_s"] = time.monotonic() - started
        await asyncio.to_thread(wait_barrier, barrier)  # 1: connected

        async def seat_table(table: list[Bot]) -> None:
            await table[0].create()
            for bot in table[1:]:
                await bot.join(table[0].room_code)

        started = time.monotonic()
        await asyncio.gather(*(gated(seat_table(t)) for t in tables))
        setup["create_join_s"] = time.monotonic() - started
        await asyncio.to_thread(wait_barrier, barrier)  # 2: rooms created, players seated

        started = time.monotonic()
        for table in tables:
            await rec.call(table[0].sio, "start_game")
        await asyncio.wait_for(asyncio.gather(*(b.first_state.wait() for b in bots)), 60)
        setup["start_s"] = time.monotonic() - started
        await asyncio.to_thread(wait_barrier, barrier)  # 3: cards dealt

        paced_at, flat_at, stop_at = await asyncio.to_thread(schedule_q.get, True,
                                                             BARRIER_TIMEOUT)
        schedule.paced_at, schedule.flat_at, schedule.stop_at = paced_at, flat_at, stop_at
        cpu: dict[str, float] = {}
        await asyncio.sleep(max(0.0, paced_at - time.monotonic()))
        cpu["paced"] = time.process_time()
        for bot in bots:
            bot.armed = True
            bot.kick()
        await asyncio.sleep(max(0.0, flat_at - time.monotonic()))
        cpu["flat"] = time.process_time()
        for bot in bots:  # thinkers wake up in the next phase without thinking
            bot.kick()
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        cpu["stop"] = time.process_time()
        pending = [t for b in bots for t in b.tasks]
        if pending:
            await asyncio.wait(pending, timeout=ACK_TIMEOUT + 1)
        await asyncio.sleep(0.5)  # late video_ready events
    finally:
        stop_probe.set()
        await probe
        if pinger is not None:
            with contextlib.suppress(Exception):
                await pinger
        await asyncio.gather(*(b.sio.disconnect() for b in bots if b.sio.connected),
                             return_exceptions=True)
    return {
        "proc": proc_index,
        "rooms": rooms,
        "setup": setup,
        "acks": {p: dict(ev) for p, ev in rec.acks.items()},
        "windows": dict(rec.windows),
        "errors": {p: dict(ev) for p, ev in rec.errors.items()},
        "rounds": dict(rec.rounds),
        "videos": dict(rec.videos),
        "games_over": rec.games,
        "cpu_s": {"paced": cpu["flat"] - cpu["paced"], "flat": cpu["stop"] - cpu["flat"]},
        "loop_lag_ms": {p: summarize_ms(v) for p, v in lag.items()},
        "ping_ms": {p: summarize_ms(v) for p, v in pings.items()},
    }


def client_process(url: str, cfg_dict: dict[str, Any], rooms: int, proc_index: int,
                   barrier: Any, schedule_q: Any, results_q: Any) -> None:
    cfg = Config(**cfg_dict)
    try:
        result = asyncio.run(client_main(url, cfg, rooms, proc_index, barrier, schedule_q))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        results_q.put({"proc": proc_index, "failed": f"{type(exc).__name__}: {exc}"})
        raise
    results_q.put(result)


# --- the orchestrator ---------------------------------------------------------------------------
def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def merge_clients(results: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    acks: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for res in results:
        for event, samples in res["acks"].get(phase, {}).items():
            acks[event].extend(samples)
        for key, n in res["errors"].get(phase, {}).items():
            errors[key] += n
    out = {event: summarize_ms(samples) for event, samples in sorted(acks.items())}
    out["all"] = summarize_ms([s for samples in acks.values() for s in samples])
    return {"acks": out, "errors": dict(errors)}


def proc_start_time(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


@contextlib.contextmanager
def app_server(workdir: Path, env: dict[str, str], shutdown: dict[str, Any]
               ) -> Iterator[AppServer]:
    """The real server, started by tests/support/app_server.py's `start_app_server`;
    on the way out it also records how the shutdown went, and kills what the server left
    behind (render-pool processes orphaned when the server had to be killed)."""
    server = start_app_server(workdir, env)
    process = server.process
    try:
        yield server
    finally:
        family = [(pid, proc_start_time(pid)) for pid in descendants(process.pid)]
        started = time.monotonic()
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_GRACE)
            shutdown["graceful"] = True
        except subprocess.TimeoutExpired:  # what a supervisor would do after its grace period
            shutdown["graceful"] = False
            process.kill()
            process.wait()
        shutdown["seconds"] = round(time.monotonic() - started, 2)
        shutdown["returncode"] = process.returncode
        tail = server.log[-20_000:]
        shutdown["application_shutdown_complete"] = "Application shutdown complete" in tail
        # After a clean shutdown the pool's processes exit by themselves within a second or
        # two; after a SIGKILL they never do (their parent is gone, nobody tells them).
        deadline = time.monotonic() + 5.0
        while True:
            left = [(pid, cmdline(pid)) for pid, start in family
                    if start is not None and proc_start_time(pid) == start]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for pid, _ in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutdown["orphans_killed"] = [cmd[:80] for _, cmd in left]


def run_config(cfg: Config) -> dict[str, Any]:
    from tests.support.redis_server import RedisServer

    started_all = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    shutdown: dict[str, Any] = {"grace_s": SHUTDOWN_GRACE}
    with tempfile.TemporaryDirectory(prefix="bench-game-") as tmp:
        workdir = Path(tmp)
        redis_server = RedisServer(workdir / "redis")
        redis_server.start()
        try:
            env = {**cfg.server_env(), "REDIS_URL": redis_server.url}
            with app_server(workdir / "server", env, shutdown) as server:
                assert redis_server.process is not None
                result = drive(cfg, ctx, server, redis_server.process.pid, started_all)
        finally:
            redis_server.stop()
    result["server_shutdown"] = shutdown
    result["duration_s"] = round(time.monotonic() - started_all, 1)
    return result


def drive(cfg: Config, ctx: Any, server: Any, redis_pid: int, started_all: float
          ) -> dict[str, Any]:
    pid = server.process.pid
    url = server.base_url
    meter = CpuMeter(pid, redis_pid)
    time.sleep(1.0)  # let the render pool and the cache settle
    rss: dict[str, int] = {"idle": vm_rss_kib(pid)}
    procs = max(1, min(cfg.client_procs, cfg.rooms))
    shares = split(cfg.rooms, procs)
    barrier = ctx.Barrier(procs + 1)
    schedule_qs = [ctx.Queue() for _ in range(procs)]
    results_q = ctx.Queue()
    workers = [ctx.Process(target=client_process, daemon=True,
                           args=(url, asdict(cfg), shares[i], i, barrier, schedule_qs[i],
                                 results_q)) for i in range(procs)]
    for w in workers:
        w.start()
    results: list[dict[str, Any]] = []
    samples: list[dict[str, float]] = []
    try:
        for label in ("connected", "rooms", "dealt"):
            barrier.wait(timeout=BARRIER_TIMEOUT)
            time.sleep(0.3)
            rss[label] = vm_rss_kib(pid)
        paced_at = time.monotonic() + 0.5
        flat_at = paced_at + cfg.paced_seconds
        stop_at = flat_at + cfg.flat_seconds
        for q in schedule_qs:
            q.put((paced_at, flat_at, stop_at))
        marks: dict[str, dict[str, float]] = {}
        everyone: dict[str, dict[int, float]] = {}
        for label, at in (("paced", paced_at), ("flat", flat_at), ("stop", stop_at)):
            while time.monotonic() < at:  # a CPU sample every second (the peak matters too)
                time.sleep(max(0.0, min(1.0, at - time.monotonic())))
                samples.append(meter.read())
            marks[label] = meter.read()
            everyone[label] = all_processes_cpu()
        deadline = time.monotonic() + ACK_TIMEOUT + 30
        while len(results) < procs:
            try:
                results.append(results_q.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                break
        rss["end"] = vm_rss_kib(pid)
        try:
            video_stats = httpx.get(f"{url}/api/video/stats", timeout=10).json()
        except httpx.HTTPError as exc:
            video_stats = {"error": repr(exc)}
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
    failed = [r for r in results if "failed" in r]
    if failed or len(results) < procs:
        raise RuntimeError(f"client processes failed: {failed or 'no result'}\n"
                           f"{server.log[-3000:]}")
    ours = {os.getpid(), pid, redis_pid, *meter.seen, *(w.pid for w in workers if w.pid)}
    others = {phase: busiest_others(everyone[a], everyone[b], marks[b]["t"] - marks[a]["t"], ours)
              for phase, (a, b) in (("paced", ("paced", "flat")), ("flat", ("flat", "stop")))}
    result = assemble(cfg, rss, marks, samples, results, video_stats, started_all)
    for phase, rows in others.items():
        result["phases"][phase]["other_processes"] = rows
    return result


def latency_over_time(cfg: Config, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ack RTT statistics per 10 s window: does the latency drift while the game goes on?"""
    merged: dict[int, list[float]] = defaultdict(list)
    for res in results:
        for window, samples in res["windows"].items():
            merged[int(window)].extend(samples)
    rows = []
    for window in sorted(merged):
        start = window * WINDOW
        phase = "paced" if start < cfg.paced_seconds else "flat"
        rows.append({"from_s": start, "phase": phase, **summarize_ms(merged[window])})
    return rows


def assemble(cfg: Config, rss: dict[str, int], marks: dict[str, dict[str, float]],
             samples: list[dict[str, float]], results: list[dict[str, Any]],
             video_stats: dict[str, Any], started_all: float) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    for phase, (a, b) in (("paced", ("paced", "flat")), ("flat", ("flat", "stop"))):
        wall = marks[b]["t"] - marks[a]["t"]
        rounds = sum(r["rounds"].get(phase, 0) for r in results)
        merged = merge_clients(results, phase)
        in_phase = [s for s in samples if marks[a]["t"] < s["t"] <= marks[b]["t"]]
        per_second = [cpu_between(x, y)["server_cpu_pct"] for x, y in
                      zip([marks[a], *in_phase], in_phase, strict=False)]
        cpu = cpu_between(marks[a], marks[b])
        client_cpu = [round(100 * r["cpu_s"][phase] / wall, 1) for r in results]
        ours = cpu["server_cpu_pct"] + cpu["render_cpu_pct"] + cpu["redis_cpu_pct"]
        phases[phase] = {
            "seconds": round(wall, 2),
            "rounds": rounds,
            "rounds_per_s": round(rounds / wall, 2),
            "acked_events_per_s": round(merged["acks"]["all"].get("n", 0) / wall, 1),
            **merged,
            **cpu,
            "server_cpu_pct_peak_1s": max(per_second, default=math.nan),
            "client_cpu_pct": client_cpu,
            # whatever else ran on the machine meanwhile (other users' jobs, the kernel)
            "other_cpu_pct": round(cpu["machine_busy_cpu_pct"] - ours - sum(client_cpu), 1),
            "client_loop_lag_ms": [r["loop_lag_ms"].get(phase, {}) for r in results],
            "ping_ms": next(r["ping_ms"].get(phase, {}) for r in results if r["proc"] == 0),
            "server_cpu_ms_per_round": round(cpu["server_cpu_pct"] * wall * 10 / rounds, 2)
            if rounds else math.nan,
            "client_cpu_ms_per_round": round(sum(client_cpu) * wall * 10 / rounds, 2)
            if rounds else math.nan,
            "videos_ready": sum(r["videos"].get(f"{phase}:ready", 0) for r in results),
            "videos_failed": sum(r["videos"].get(f"{phase}:failed", 0) for r in results),
        }
    setup = merge_clients(results, "setup")
    rooms, clients = cfg.rooms, cfg.clients
    memory = {
        "rss_kib": rss,
        "per_connection_kib": round((rss["connected"] - rss["idle"]) / clients, 1),
        "per_room_kib": round((rss["dealt"] - rss["connected"]) / rooms, 1),
        "per_room_with_its_connections_kib": round((rss["dealt"] - rss["idle"]) / rooms, 1),
        "growth_during_play_kib": rss["end"] - rss["dealt"],
    }
    paced = phases["paced"]["acks"]["all"]
    targets = [{
        "metric": f"p99 ack round trip, {clients} clients, paced play",
        "value": paced.get("p99_ms", math.nan), "unit": "ms", "op": "<",
        "target": TARGET_P99_MS, "met": paced.get("p99_ms", math.inf) < TARGET_P99_MS,
        "detail": f"{phases['paced']['rounds_per_s']} rounds/s, server CPU "
                  f"{phases['paced']['server_cpu_pct']} %",
    }]
    flat = phases["flat"]["acks"]["all"]
    targets.append({
        "metric": f"p99 ack round trip, {clients} clients, flat out (saturated)",
        "value": flat.get("p99_ms", math.nan), "unit": "ms", "op": "<",
        "target": TARGET_P99_MS, "met": flat.get("p99_ms", math.inf) < TARGET_P99_MS,
        "detail": f"{phases['flat']['rounds_per_s']} rounds/s (capacity of the 2-core box)",
    })
    return {
        "config": {**asdict(cfg), "clients": clients, "server_env": cfg.server_env(),
                   "nproc": len(os.sched_getaffinity(0))},
        "setup": {"seconds": {k: round(statistics.fmean(r["setup"][k] for r in results), 2)
                              for k in results[0]["setup"]}, **setup},
        "phases": phases,
        "memory": memory,
        "latency_over_time": latency_over_time(cfg, results),
        "games_over": sum(r["games_over"] for r in results),
        "video_stats": video_stats,
        "targets": targets,
        "duration_s": round(time.monotonic() - started_all, 1),
    }


def run(quick: bool = False, cfg: Config | None = None) -> dict[str, Any]:
    """The benchmark with the default configuration (`quick`: 10 rooms, short phases)."""
    if cfg is None:
        cfg = quick_config() if quick or SCALE < 0.5 else Config()
    return run_config(cfg)


def _fmt(stats: dict[str, Any], key: str) -> str:
    value = stats.get(key)
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.1f}"


def print_summary(results: dict[str, Any]) -> None:
    cfg = results["config"]
    print(f"{cfg['rooms']} rooms × {cfg['players']} players = {cfg['clients']} clients in "
          f"{cfg['client_procs']} client process(es); think {cfg['think']} s (paced); "
          f"SPECULATIVE_RENDER={cfg['speculative']}, VIDEO_RENDER_WORKERS="
          f"{cfg['render_workers']}, narration={cfg['narration']}")
    setup = results["setup"]
    print("set-up:", ", ".join(f"{k} {v} s" for k, v in setup["seconds"].items()),
          "| acks:", ", ".join(f"{e} p50 {_fmt(s, 'p50_ms')} / p99 {_fmt(s, 'p99_ms')} ms"
                               for e, s in setup["acks"].items() if e != "all"))
    for name, phase in results["phases"].items():
        print(f"\n{name}: {phase['seconds']} s, {phase['rounds']} rounds = "
              f"{phase['rounds_per_s']} rounds/s, {phase['acked_events_per_s']} acked events/s")
        print(f"  {'event':14s} {'n':>7s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} "
              f"{'max ms':>8s}")
        for event, s in phase["acks"].items():
            print(f"  {event:14s} {s.get('n', 0):>7d} {_fmt(s, 'p50_ms'):>8s} "
                  f"{_fmt(s, 'p90_ms'):>8s} {_fmt(s, 'p99_ms'):>8s} {_fmt(s, 'max_ms'):>8s}")
        lag = ", ".join(f"p99 {_fmt(x, 'p99_ms')} / max {_fmt(x, 'max_ms')} ms"
                        for x in phase["client_loop_lag_ms"])
        print(f"  CPU: server {phase['server_cpu_pct']} % (peak 1 s "
              f"{phase['server_cpu_pct_peak_1s']} %), render pool {phase['render_cpu_pct']} %, "
              f"redis {phase['redis_cpu_pct']} %, clients {phase['client_cpu_pct']} %")
        print(f"  machine: busy {phase['machine_busy_cpu_pct']} % of {cfg['nproc']}00 %, of "
              f"which other processes {phase['other_cpu_pct']} %; steal "
              f"{phase['machine_steal_cpu_pct']} %")
        ping = phase["ping_ms"]
        print(f"  bare round trip (unknown event, no game logic): p50 {_fmt(ping, 'p50_ms')} / "
              f"p99 {_fmt(ping, 'p99_ms')} ms; CPU per round: server "
              f"{phase['server_cpu_ms_per_round']} ms, clients "
              f"{phase['client_cpu_ms_per_round']} ms")
        for row in phase.get("other_processes", []):
            print(f"    not ours: {row['cpu_pct']} % pid {row['pid']} {row['cmd'][:80]}")
        print(f"  client loop lag: {lag}; videos ready {phase['videos_ready']}, "
              f"failed {phase['videos_failed']}; errors {phase['errors'] or 'none'}")
    series = results.get("latency_over_time", [])
    if series:
        print("\nack p99 by 10 s window (ms): " + ", ".join(
            f"{row['phase'][0]}{row['from_s']:.0f}s {_fmt(row, 'p99_ms')}" for row in series))
    mem = results["memory"]
    rss = {k: f"{v / 1024:.1f}" for k, v in mem["rss_kib"].items()}
    print(f"\nserver VmRSS MiB: {rss}")
    print(f"memory: {mem['per_room_kib']} KiB per room (+ hands), {mem['per_connection_kib']} "
          f"KiB per connection, {mem['per_room_with_its_connections_kib']} KiB per room with "
          f"its connections")
    vs = results["video_stats"]
    print(f"video service: generations {vs.get('generations')}, in flight {vs.get('in_flight')}, "
          f"mean render {vs.get('mean_render_seconds')} s, failures {vs.get('failures')}")
    for t in results["targets"]:
        verdict = "met " if t["met"] else "MISS"
        print(f"[{verdict}] {t['metric']}: {t['value']} {t['unit']} (target {t['op']} "
              f"{t['target']}) — {t['detail']}")
    sd = results.get("server_shutdown", {})
    if sd:
        how = "graceful" if sd.get("graceful") else f"HUNG, killed after {sd.get('grace_s')} s"
        orphans = sd.get("orphans_killed", [])
        print(f"server shutdown after SIGTERM: {how} ({sd.get('seconds')} s); orphaned "
              f"render-pool processes killed: "
              f"{orphans if isinstance(orphans, int) else len(orphans)}")
    print(f"({results['duration_s']} s in all)")


def parse_args(argv: list[str] | None = None) -> tuple[Config, bool, Path | None]:
    d = Config()
    p = argparse.ArgumentParser(prog="bench/bench_game.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="10 rooms, short phases (smoke run)")
    p.add_argument("--rooms", type=int, default=None)
    p.add_argument("--players", type=int, default=d.players)
    p.add_argument("--client-procs", type=int, default=d.client_procs)
    p.add_argument("--paced-seconds", type=float, default=None)
    p.add_argument("--flat-seconds", type=float, default=None)
    p.add_argument("--think", type=float, default=d.think,
                   help="mean think time (s) before each action in the paced phase")
    p.add_argument("--speculative", action="store_true", help="SPECULATIVE_RENDER=true")
    p.add_argument("--render-workers", type=int, default=d.render_workers)
    p.add_argument("--narration", action="store_true", help="VIDEO_NARRATION=true")
    p.add_argument("--log-level", default=d.log_level)
    p.add_argument("--no-write", action="store_true", help="do not write bench/results/game.json")
    p.add_argument("--output", type=Path, default=None,
                   help="write the results to this JSON file instead of bench/results/game.json")
    a = p.parse_args(argv)
    base = quick_config() if a.quick else d
    cfg = Config(rooms=a.rooms or base.rooms, players=a.players, client_procs=a.client_procs,
                 paced_seconds=a.paced_seconds or base.paced_seconds,
                 flat_seconds=a.flat_seconds or base.flat_seconds, think=a.think,
                 speculative=a.speculative, render_workers=a.render_workers,
                 narration=a.narration, log_level=a.log_level)
    return cfg, a.no_write, a.output


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg, no_write, output = parse_args(argv)
    result = run(cfg=cfg)
    print_summary(result)
    if output is not None:
        output.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"\nwrote {output}")
    elif not no_write:
        print(f"\nwrote {write_results(NAME, result)}")
    return result


if __name__ == "__main__":
    main()
