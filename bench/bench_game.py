"""Game load: many simulated players against real server processes, in-process rooms against
rooms shared in Redis on one and on two instances, in the same run.

    .venv/bin/python bench/bench_game.py [--rooms 50 --players 4 ...]   (or python -m bench)

The servers are the real one, `python -m uvicorn app.main:socket_app` on 127.0.0.1 (started by
`tests/support/app_server.py`), with VIDEO_PROVIDER=local: every round's winner is really
rendered (in each instance's render pool, whose workers run at nice +10). SPECULATIVE_RENDER is
off, so the CPU per round compares the game's own work. Three scenarios run one after the other,
each on fresh processes (and a fresh redis-server of its own, on a free port):

* **in-process**: REDIS_URL=memory://, rooms in the server's memory (the embedded default);
* **redis ×1**: one instance on Redis: rooms, schedule and heartbeats in Redis, emits through
  python-socketio's Redis manager;
* **redis ×2**: two instances on one Redis; seat i of every room connects directly to instance
  i mod 2, so every room is played across both (the worst case behind a load balancer that
  spreads players at random). After the timed phases instance A is SIGKILLed and its players
  reconnect to B with their token (`auth={"token"}`): the failover time.

Beside them, for issue 15, **redis ×1 nobatch** is redis ×1 with CACHE_BATCH_MAX_KEYS=0 (the
async cache's adaptive batching off): ack p99 and capacity are printed side by side. And for
issue 12, two **winners** scenarios on one instance on Redis play the paced phase only (no flat
out), then wait until every `round_won` a room received has its `video_ready` (or
`video_failed`), for at most DRAIN_SECONDS (5 minutes) after play: with the render worker
embedded in the web process (VIDEO_WORKER_MODE=embedded), then with VIDEO_WORKER_MODE=external
and two `python -m app.worker` processes on the same Redis and video folder. Reported: winners
delivered / won, video_failed, win → video_ready p50 / p95, and how long the drain took.

Clients are real `socketio.AsyncClient`s (websocket transport), all in one asyncio loop per
client process (`--client-procs`, default 1). Each room has one host and `players - 1` guests;
every player acts only on what its own connection received (its `hand`, the `room_state`): the
non-czars submit `pick` random cards of their hand, the czar picks a random submission, the host
starts a new game after `game_over`. Two timed phases follow the set-up in every scenario:

* **paced**: each player "thinks" U(0.5, 1.5) × `--think` seconds before acting (default 1 s,
  so a room plays a round every ~2.3 s, 10-20× faster than people do). The p99 target
  (< 50 ms for every acknowledged event with 200 clients) is checked on this phase;
* **flat out**: nobody thinks; rounds/s is the capacity of the box (clients, servers and Redis
  share the 2 cores), so capacity is also given per server CPU-second.

Measured per scenario: time from emit to ack of every event (`sio.call`); rounds/s; CPU seconds
(utime + stime from /proc/<pid>/stat, before and after each phase) of the server processes, of
their render pools, of redis-server and of each client process; delivery latency, from a
player's `submit_cards` emit until another player's `room_state` shows it submitted, split into
peers on the same instance and on the other one; Redis `MEMORY USAGE` of every room's keys
(`punchline:room:{CODE}` and its `:history`) after dealing and at the end of play; the failover
time of the two-instance scenario; the servers' VmRSS.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
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
# Seconds between SIGTERM and SIGKILL: Docker's default stop timeout, as in tests/support. A
# server with rooms in memory drains its local renders for up to 8 s (LOCAL_DRAIN_SECONDS in
# app/video/lifespan.py), which a 6 s grace used to report as hung; past 10 s it is hung.
SHUTDOWN_GRACE = 10.0
WINDOW = 4.0  # seconds of the latency-over-time series
KILL_DELAY = 2.5  # seconds between the end of play and the failover's SIGKILL


@dataclass
class Config:
    rooms: int = 50
    players: int = 4
    client_procs: int = 1
    paced_seconds: float = 12.0
    flat_seconds: float = 8.0
    think: float = 1.0  # mean seconds a player thinks before acting, paced phase
    speculative: bool = False  # SPECULATIVE_RENDER
    render_workers: int = 1  # VIDEO_RENDER_WORKERS
    narration: bool = False  # VIDEO_NARRATION
    log_level: str = "INFO"
    connect_concurrency: int = 25
    score_limit: int = 50
    hand_size: int = 10
    shared: bool = True  # rooms in Redis (a redis-server of the scenario's own) or memory://
    instances: int = 1
    failover: bool = False  # SIGKILL instance A after the phases; its players move to B
    label: str = "redis ×1"
    channel: str = "bench-game"  # SOCKETIO_CHANNEL
    cache_batch_max_keys: int | None = None  # CACHE_BATCH_MAX_KEYS (None: the default; 0: off)
    worker_mode: str = "embedded"  # VIDEO_WORKER_MODE
    external_workers: int = 0  # `python -m app.worker` processes on the scenario's Redis
    # > 0: a winners scenario. After play, wait (at most this long) until every round_won has
    # had its video_ready or video_failed, and report win -> video_ready.
    drain_seconds: float = 0.0

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
            "SOCKETIO_CHANNEL": self.channel,
            # every client comes from 127.0.0.1; a killed instance's connections still count
            # until its lease runs out, while its players reconnect to the survivor
            "SOCKET_MAX_CONNECTIONS_PER_ADDRESS": str(4 * self.clients + 64),
            "VIDEO_WORKER_MODE": self.worker_mode,
            **({} if self.cache_batch_max_keys is None
               else {"CACHE_BATCH_MAX_KEYS": str(self.cache_batch_max_keys)}),
        }

    @property
    def spans(self) -> list[tuple[str, tuple[str, str]]]:
        """The timed phases and the marks that bound them (a winners scenario has no flat out)."""
        out = [("paced", ("paced", "flat"))]
        if self.flat_seconds > 0:
            out.append(("flat", ("flat", "stop")))
        return out


def quick_config() -> Config:
    return Config(rooms=10, paced_seconds=5.0, flat_seconds=4.0)


DRAIN_SECONDS = 300.0  # issue 12: winners are counted over the run plus at most 5 minutes
NO_BATCH = "redis ×1 nobatch"
WIN_EMBEDDED = "wins embedded"
WIN_EXTERNAL = "wins 2 workers"


def scenarios(base: Config) -> list[Config]:
    """The same load on in-process rooms, on Redis with one instance (with and without the
    cache's adaptive batching), and with two; then the winners scenarios: paced play only,
    followed by a drain until every winner's video has reached its room, with the render
    worker embedded in the web process, then with two `python -m app.worker` processes."""
    winners = replace(base, shared=True, instances=1, failover=False, flat_seconds=0.0,
                      drain_seconds=DRAIN_SECONDS)
    return [replace(base, shared=False, instances=1, failover=False, label="in-process",
                    channel="bench-game-mem"),
            replace(base, shared=True, instances=1, failover=False, label="redis ×1",
                    channel="bench-game-r1"),
            replace(base, shared=True, instances=1, failover=False, label=NO_BATCH,
                    channel="bench-game-r1nb", cache_batch_max_keys=0),
            replace(base, shared=True, instances=2, failover=True, label="redis ×2",
                    channel="bench-game-r2"),
            replace(winners, label=WIN_EMBEDDED, channel="bench-game-we"),
            replace(winners, label=WIN_EXTERNAL, channel="bench-game-wx",
                    worker_mode="external", external_workers=2)]


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
    """CPU seconds of the servers (summed), of their descendants (render pools) and of
    redis-server (absent: 0)."""

    def __init__(self, server_pids: list[int], redis_pid: int | None) -> None:
        self.server_pids, self.redis_pid = server_pids, redis_pid
        self.dead_children = 0.0  # CPU of descendants seen before that have exited since
        self.seen: dict[int, float] = {}
        self.ever: set[int] = set()  # every descendant seen (a killed instance's pool too)

    def read(self) -> dict[str, float]:
        children = 0.0
        alive = {child for pid in self.server_pids for child in descendants(pid)}
        self.ever |= alive
        for pid in list(self.seen):
            if pid not in alive:
                self.dead_children += self.seen.pop(pid)
        for pid in alive:
            self.seen[pid] = proc_cpu_seconds(pid)
            children += self.seen[pid]
        machine = machine_cpu()
        return {"t": time.monotonic(),
                "server": sum(proc_cpu_seconds(pid) for pid in self.server_pids),
                "render": children + self.dead_children,
                "redis": proc_cpu_seconds(self.redis_pid) if self.redis_pid else 0.0,
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
    kill_at: float = math.inf  # failover: when instance A gets its SIGKILL

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
    # (room, round, player) -> (monotonic time of the submit_cards emit, sender's instance)
    sent: dict[tuple[str, int, str], tuple[float, int]] = field(default_factory=dict)
    # phase -> "same" / "cross" instance -> ms from that emit to a peer's room_state showing it
    delivery: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    # (room, round) -> monotonic time seat 0 received round_won / video_ready / video_failed
    won: dict[tuple[str, int], float] = field(default_factory=dict)
    ready: dict[tuple[str, int], float] = field(default_factory=dict)
    failed: dict[tuple[str, int], float] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def undelivered(self) -> list[tuple[str, int]]:
        return [k for k in self.won if k not in self.ready and k not in self.failed]

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

    def __init__(self, urls: list[str], seat: int, name: str, rec: Recorder, cfg: Config,
                 rng: random.Random) -> None:
        self.instance = seat % len(urls)  # every room is spread over the instances
        self.url, self.seat, self.name = urls[self.instance], seat, name
        self.rec, self.cfg, self.rng = rec, cfg, rng
        self.sio = socketio.AsyncClient(reconnection=False)
        self.player_id = ""
        self.room_code = ""
        self.token = ""
        self.seen: set[tuple[str, int, str]] = set()  # submissions seen in a room_state
        self.disconnected = asyncio.Event()
        self.disconnected_at = math.inf
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
        self.sio.on("disconnect", self._on_disconnect)

    # events
    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected_at = min(self.disconnected_at, time.monotonic())
        self.disconnected.set()

    def _note_delivery(self, data: dict[str, Any]) -> None:
        """A peer's submission shows up in our room_state: how long after its emit?"""
        now = time.monotonic()
        for p in data.get("players", []):
            if not p.get("submitted") or p["id"] == self.player_id:
                continue
            key = (self.room_code, data["round"], p["id"])
            sent = self.rec.sent.get(key)
            if sent is None or key in self.seen:
                continue
            self.seen.add(key)
            kind = "same" if sent[1] == self.instance else "cross"
            self.rec.delivery[self.rec.schedule.phase(sent[0])][kind].append(
                (now - sent[0]) * 1000)

    async def _on_state(self, data: dict[str, Any]) -> None:
        self.state = data
        self._note_delivery(data)
        if data.get("phase") == "submitting":
            self.first_state.set()
        self.kick()

    async def _on_hand(self, data: dict[str, Any]) -> None:
        self.hand = data
        self.kick()

    async def _on_round_won(self, data: dict[str, Any]) -> None:
        if self.seat == 0:  # rounds restart at 1 in a new game: keep the first (score limit 50)
            self.rec.won.setdefault((self.room_code, int(data["round"])), time.monotonic())

    async def _on_game_over(self, data: dict[str, Any]) -> None:
        self.games_over += 1
        if self.seat == 0:
            self.rec.games += 1
        self.kick()

    async def _on_video_ready(self, data: dict[str, Any]) -> None:
        if self.seat == 0:
            self.rec.videos[self.rec.schedule.phase(time.monotonic()) + ":ready"] += 1
            self.rec.ready.setdefault((self.room_code, int(data["round"])), time.monotonic())

    async def _on_video_failed(self, data: dict[str, Any]) -> None:
        if self.seat == 0:
            self.rec.videos[self.rec.schedule.phase(time.monotonic()) + ":failed"] += 1
            self.rec.failed.setdefault((self.room_code, int(data["round"])), time.monotonic())
            self.rec.reasons[str(data.get("reason", "?"))[:80]] += 1

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
            if event == "submit_cards":
                key = (self.room_code, self.last_key[2], self.player_id)
                self.rec.sent[key] = (time.monotonic(), self.instance)
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
        self.token = ack["token"]

    async def join(self, code: str) -> None:
        ack = await self.rec.call(self.sio, "join_room", {"room_code": code, "name": self.name})
        if ack is None or not ack.get("ok"):
            raise RuntimeError(f"join_room failed: {ack}")
        self.player_id, self.room_code = ack["player_id"], ack["room_code"]
        self.token = ack["token"]

    async def fail_over(self, url: str) -> dict[str, Any]:
        """Our instance was SIGKILLed: notice it, reconnect to ``url`` with our token, and wait
        for the room_state (and hand) the survivor sends. Monotonic times, for the caller."""
        out: dict[str, Any] = {"error": None}
        got_state, got_hand = asyncio.Event(), asyncio.Event()
        sio = socketio.AsyncClient(reconnection=False)

        async def on_state(data: dict[str, Any]) -> None:
            out.setdefault("state_at", time.monotonic())
            got_state.set()

        async def on_hand(data: dict[str, Any]) -> None:
            out.setdefault("hand_at", time.monotonic())
            got_hand.set()

        async def on_error(data: dict[str, Any]) -> None:
            out["error"] = out["error"] or data.get("code")

        sio.on("room_state", on_state)
        sio.on("hand", on_hand)
        sio.on("error", on_error)
        try:
            await asyncio.wait_for(self.disconnected.wait(), ACK_TIMEOUT)
            out["disconnect_at"] = self.disconnected_at
            await sio.connect(url, transports=["websocket"], auth={"token": self.token},
                              wait_timeout=20)
            await asyncio.wait_for(asyncio.gather(got_state.wait(), got_hand.wait()),
                                   ACK_TIMEOUT)
        except Exception as exc:  # timeout, refused connection
            out["error"] = out["error"] or type(exc).__name__
        finally:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        return out


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


async def client_main(urls: list[str], cfg: Config, rooms: int, proc_index: int, barrier: Any,
                      schedule_q: Any) -> dict[str, Any]:
    rng = random.Random(1000 + proc_index)
    schedule = Schedule()
    rec = Recorder(schedule)
    lag: dict[str, list[float]] = defaultdict(list)
    stop_probe = asyncio.Event()
    probe = asyncio.create_task(loop_lag_probe(schedule, lag, stop_probe))
    pings: dict[str, list[float]] = defaultdict(list)
    pinger = (asyncio.create_task(ping_probe(urls[0], schedule, pings, stop_probe))
              if proc_index == 0 else None)
    tables = [[Bot(urls, seat, f"P{proc_index}r{r}s{seat}", rec, cfg, rng)
               for seat in range(cfg.players)] for r in range(rooms)]
    bots = [b for t in tables for b in t]
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    setup: dict[str, float] = {}
    failover: list[dict[str, Any]] = []

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

        paced_at, flat_at, stop_at, kill_at = await asyncio.to_thread(
            schedule_q.get, True, BARRIER_TIMEOUT)
        schedule.paced_at, schedule.flat_at, schedule.stop_at = paced_at, flat_at, stop_at
        schedule.kill_at = kill_at
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
        drain_end = stop_at + cfg.drain_seconds
        while cfg.drain_seconds > 0 and rec.undelivered() and time.monotonic() < drain_end:
            await asyncio.sleep(0.1)  # winners: until every round_won has its video
        drained_at = time.monotonic()
        if cfg.failover:
            stop_probe.set()
            if pinger is not None:
                with contextlib.suppress(Exception):
                    await pinger
            victims = [b for b in bots if b.instance == 0]
            failover = await asyncio.gather(*(b.fail_over(urls[-1]) for b in victims))
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
        "delivery": {p: dict(kinds) for p, kinds in rec.delivery.items()},
        "failover": failover,
        "winners": {"stop_at": stop_at, "drained_at": drained_at,
                    "rows": [[room, rnd, won, rec.ready.get((room, rnd)),
                              rec.failed.get((room, rnd))]
                             for (room, rnd), won in rec.won.items()],
                    "failed_reasons": dict(rec.reasons)},
    }


def client_process(urls: list[str], cfg_dict: dict[str, Any], rooms: int, proc_index: int,
                   barrier: Any, schedule_q: Any, results_q: Any) -> None:
    cfg = Config(**cfg_dict)
    try:
        result = asyncio.run(client_main(urls, cfg, rooms, proc_index, barrier, schedule_q))
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


def stop_server(server: AppServer, shutdown: dict[str, Any]) -> None:
    """SIGTERM, then SIGKILL after the grace period; record how the shutdown went, and kill
    what the server left behind (render-pool processes orphaned when it had to be killed)."""
    process = server.process
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
    if not shutdown["graceful"]:  # what it was doing when the grace period ran out
        shutdown["log_tail"] = tail[-2500:]
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


def kill_instance(server: AppServer) -> float:
    """SIGKILL the server and its render pool at once, as when its machine or container dies;
    returns the monotonic time of the kill."""
    family = descendants(server.process.pid)
    killed_at = time.monotonic()
    server.process.kill()
    for pid in family:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait()
    return killed_at


@contextlib.contextmanager
def app_servers(workdir: Path, env: dict[str, str], n: int, shutdowns: list[dict[str, Any]]
                ) -> Iterator[list[AppServer]]:
    """``n`` real servers (tests/support/app_server.py's `start_app_server`), started in
    parallel; the ones still running at the end are stopped with SIGTERM."""
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(start_app_server, workdir / f"server{i}", env) for i in range(n)]
        servers: list[AppServer] = []
        errors: list[BaseException] = []
        for future in futures:
            try:
                servers.append(future.result())
            except Exception as exc:
                errors.append(exc)
    try:
        if errors:
            raise errors[0]
        yield servers
    finally:
        for server in servers:
            shutdown: dict[str, Any] = {"grace_s": SHUTDOWN_GRACE}
            if server.process.poll() is None:
                stop_server(server, shutdown)
            else:
                shutdown["sigkilled"] = True
            shutdowns.append(shutdown)


def room_memory(redis_url: str | None) -> dict[str, Any]:
    """MEMORY USAGE (exact, SAMPLES 0) of every room's hash and of its history list, averaged."""
    if redis_url is None:
        return {}
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        rooms: list[int] = []
        history: list[int] = []
        lengths: list[int] = []
        for key in client.scan_iter(match="punchline:room:*", count=1000):
            size = client.memory_usage(key, samples=0) or 0
            if key.endswith(b":history"):
                history.append(size)
                lengths.append(client.llen(key))
            else:
                rooms.append(size)
        used = client.info("memory")["used_memory"]
    finally:
        client.close()
    mean = (lambda v: round(statistics.fmean(v)) if v else 0)  # noqa: E731
    return {"rooms": len(rooms), "room_bytes": mean(rooms), "room_bytes_max": max(rooms, default=0),
            "histories": len(history), "history_bytes": mean(history),
            "history_rounds": round(statistics.fmean(lengths), 1) if lengths else 0,
            "per_room_bytes": mean(rooms) + (sum(history) // len(rooms) if rooms else 0),
            "used_memory": used}


def redis_calls(redis_url: str | None) -> dict[str, int]:
    """INFO commandstats: calls so far per command (the store's work, counted by Redis)."""
    if redis_url is None:
        return {}
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def calls_per_round(a: dict[str, int], b: dict[str, int], rounds: int) -> dict[str, float]:
    """Redis commands per round between two commandstats snapshots, busiest first."""
    if not a or not rounds:
        return {}
    diff = {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0) > 0}
    ordered = sorted(diff.items(), key=lambda kv: -kv[1])
    return {"all": round(sum(diff.values()) / rounds, 1),
            **{k: round(v / rounds, 1) for k, v in ordered}}


def run_config(cfg: Config) -> dict[str, Any]:
    """One scenario on fresh processes: its redis-server (when shared) and its instances."""
    from tests.support.redis_server import RedisServer

    started_all = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    shutdowns: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-game-") as tmp:
        workdir = Path(tmp)
        redis_server = RedisServer(workdir / "redis") if cfg.shared else None
        if redis_server is not None:
            redis_server.start()
        try:
            env = {**cfg.server_env(),
                   "REDIS_URL": redis_server.url if redis_server else "memory://"}
            with app_servers(workdir, env, cfg.instances, shutdowns) as servers, \
                    render_workers(workdir, env, cfg.external_workers) as workers:
                result = drive(cfg, ctx, servers, redis_server, started_all, workers)
                shared = [s.log for s in servers if "Game state: shared in Redis" in s.log]
                if cfg.shared and len(shared) != len(servers):
                    raise RuntimeError("an instance did not put its rooms in Redis:\n"
                                       + servers[0].log[-3000:])
        finally:
            if redis_server is not None:
                redis_server.stop()
    result["server_shutdown"] = shutdowns
    result["duration_s"] = round(time.monotonic() - started_all, 1)
    return result


@contextlib.contextmanager
def render_workers(workdir: Path, env: dict[str, str], n: int
                   ) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` `python -m app.worker` processes on the scenario's Redis and the first server's
    video folder (DATA_DIR), started once it is up; SIGTERM (then SIGKILL) at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    logs = [workdir / f"worker{i}.log" for i in range(n)]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env,
                "DATA_DIR": str(workdir / "server0" / "data")}
    try:
        for log_path in logs:
            with open(log_path, "wb") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "app.worker"], cwd=REPO,
                                              env=full_env, stdout=log,
                                              stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        for proc, log_path in zip(procs, logs, strict=True):
            while "render worker started" not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("a render worker did not start:\n"
                                       + log_path.read_text(errors="replace")[-3000:])
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def total_rss_kib(pids: list[int]) -> int:
    return sum(vm_rss_kib(pid) for pid in pids)


def drive(cfg: Config, ctx: Any, servers: list[AppServer], redis_server: Any,
          started_all: float, workers: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    pids = [s.process.pid for s in servers]
    urls = [s.base_url for s in servers]
    redis_pid = redis_server.process.pid if redis_server is not None else None
    redis_url = redis_server.url if redis_server is not None else None
    meter = CpuMeter(pids, redis_pid)
    worker_meter = CpuMeter([w.pid for w in workers], None)  # external render workers
    time.sleep(1.0)  # let the render pools and the caches settle
    rss: dict[str, int] = {"idle": total_rss_kib(pids)}
    redis_memory: dict[str, Any] = {}
    procs = max(1, min(cfg.client_procs, cfg.rooms))
    shares = split(cfg.rooms, procs)
    barrier = ctx.Barrier(procs + 1)
    schedule_qs = [ctx.Queue() for _ in range(procs)]
    results_q = ctx.Queue()
    clients = [ctx.Process(target=client_process, daemon=True,
                           args=(urls, asdict(cfg), shares[i], i, barrier, schedule_qs[i],
                                 results_q)) for i in range(procs)]
    for w in clients:
        w.start()
    results: list[dict[str, Any]] = []
    samples: list[dict[str, float]] = []
    killed_at: float | None = None
    try:
        for label in ("connected", "rooms", "dealt"):
            barrier.wait(timeout=BARRIER_TIMEOUT)
            time.sleep(0.3)
            rss[label] = total_rss_kib(pids)
        redis_memory["dealt"] = room_memory(redis_url)
        paced_at = time.monotonic() + 0.5
        flat_at = paced_at + cfg.paced_seconds
        stop_at = flat_at + cfg.flat_seconds
        kill_at = stop_at + KILL_DELAY if cfg.failover else math.inf
        for q in schedule_qs:
            q.put((paced_at, flat_at, stop_at, kill_at))
        marks: dict[str, dict[str, float]] = {}
        worker_cpu = {"paced": worker_meter.read()}
        calls: dict[str, dict[str, int]] = {}
        everyone: dict[str, dict[int, float]] = {}
        for label, at in (("paced", paced_at), ("flat", flat_at), ("stop", stop_at)):
            while time.monotonic() < at:  # a CPU sample every second (the peak matters too)
                time.sleep(max(0.0, min(1.0, at - time.monotonic())))
                samples.append(meter.read())
            marks[label] = meter.read()
            worker_cpu[label] = worker_meter.read()
            everyone[label] = all_processes_cpu()
            calls[label] = redis_calls(redis_url)
        rss["end"] = total_rss_kib(pids)
        redis_memory["end"] = room_memory(redis_url)
        video_stats = []
        for url in urls:
            try:
                video_stats.append(httpx.get(f"{url}/api/video/stats", timeout=10).json())
            except httpx.HTTPError as exc:
                video_stats.append({"error": repr(exc)})
        if cfg.failover:
            time.sleep(max(0.0, kill_at - time.monotonic()))
            killed_at = kill_instance(servers[0])
        deadline = time.monotonic() + 2 * ACK_TIMEOUT + 30 + cfg.drain_seconds
        while len(results) < procs:
            try:
                results.append(results_q.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                break
        marks["drained"] = meter.read()
        worker_cpu["drained"] = worker_meter.read()
        if cfg.drain_seconds > 0:
            for url in urls:
                try:
                    video_stats.append(httpx.get(f"{url}/api/video/stats", timeout=10).json())
                except httpx.HTTPError as exc:
                    video_stats.append({"error": repr(exc)})
    finally:
        for w in clients:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
    failed = [r for r in results if "failed" in r]
    if failed or len(results) < procs:
        raise RuntimeError(f"client processes failed: {failed or 'no result'}\n"
                           f"{servers[-1].log[-3000:]}")
    ours = {os.getpid(), *pids, *meter.ever, *(w.pid for w in clients if w.pid),
            *(w.pid for w in workers), *worker_meter.ever}
    if redis_pid:
        ours.add(redis_pid)
    others = {phase: busiest_others(everyone[a], everyone[b], marks[b]["t"] - marks[a]["t"], ours)
              for phase, (a, b) in cfg.spans}
    result = assemble(cfg, rss, marks, samples, results, video_stats, started_all)
    for phase, rows in others.items():
        result["phases"][phase]["other_processes"] = rows
    for phase, (a, b) in cfg.spans:  # the external render workers and their render pools
        p = result["phases"][phase]
        wall = worker_cpu[b]["t"] - worker_cpu[a]["t"]
        used = sum(worker_cpu[b][k] - worker_cpu[a][k] for k in ("server", "render"))
        p["workers_cpu_pct"] = round(100 * used / wall, 1)
        p["other_cpu_pct"] = round(p["other_cpu_pct"] - p["workers_cpu_pct"], 1)
    result["redis_memory"] = redis_memory
    for phase, (a, b) in cfg.spans:
        result["phases"][phase]["redis_calls_per_round"] = calls_per_round(
            calls[a], calls[b], result["phases"][phase]["rounds"])
    if killed_at is not None:
        result["failover"] = failover_stats(results, killed_at)
    if cfg.drain_seconds > 0:
        w = result["winners"] = winners_stats(cfg, results, marks, worker_cpu)
        result["targets"].append(winners_target(cfg.label, w))
    return result


def winners_target(label: str, w: dict[str, Any] | None, error: str = "") -> dict[str, Any]:
    metric = f"{label}: winner videos delivered (run + drain ≤ {DRAIN_SECONDS:.0f} s), 0 failed"
    if w is None:
        return {"metric": metric, "value": None, "unit": "%", "op": ">=", "target": 100.0,
                "met": False, "detail": "not measured: " + error[:120]}
    t = w["win_to_ready_s"]
    return {"metric": metric, "value": w["delivered_pct"], "unit": "%", "op": ">=",
            "target": 100.0, "met": w["delivered"] == w["wins"] and w["failed"] == 0,
            "detail": f"{w['delivered']}/{w['wins']} delivered, {w['failed']} video_failed; "
                      f"win → video_ready p50 {t['p50']} s, p95 {t['p95']} s"}


def winners_stats(cfg: Config, results: list[dict[str, Any]], marks: dict[str, dict[str, float]],
                  worker_cpu: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Every round_won of the run against its room's video_ready (or video_failed)."""
    rows = [row for r in results for row in r["winners"]["rows"]]
    ready = [row for row in rows if row[3] is not None]
    failed = [row for row in rows if row[4] is not None]
    stop_at = min(r["winners"]["stop_at"] for r in results)
    reasons: dict[str, int] = defaultdict(int)
    for r in results:
        for reason, n in r["winners"]["failed_reasons"].items():
            reasons[reason] += n
    waits = sorted(row[3] - row[2] for row in ready)
    last = max((row[3] for row in ready), default=stop_at)
    paced = marks["drained"]["t"] - marks["paced"]["t"]
    return {
        "wins": len(rows), "delivered": len(ready), "failed": len(failed),
        "missing": len(rows) - len(ready),
        "delivered_pct": round(100 * len(ready) / len(rows), 1) if rows else math.nan,
        "win_to_ready_s": {"p50": round(quantile(waits, 0.50), 2),
                           "p95": round(quantile(waits, 0.95), 2),
                           "max": round(waits[-1], 2) if waits else math.nan},
        "drain_bound_s": cfg.drain_seconds,
        # from the end of play until the last video_ready (0: all were in before play ended)
        "drain_s": round(max(0.0, last - stop_at), 1),
        "gave_up": bool(len(rows) - len(ready) - len(failed)),
        "failed_reasons": dict(reasons),
        "examples_missing": [f"{row[0]}#{row[1]}" for row in rows if row[3] is None][:5],
        # CPU seconds from the start of play to the end of the drain
        "server_cpu_s": round(marks["drained"]["server"] - marks["paced"]["server"], 1),
        "embedded_render_cpu_s": round(marks["drained"]["render"] - marks["paced"]["render"], 1),
        "worker_cpu_s": round(worker_cpu["drained"]["server"] + worker_cpu["drained"]["render"]
                              - worker_cpu["paced"]["server"] - worker_cpu["paced"]["render"], 1),
        "play_and_drain_s": round(paced, 1),
    }


def failover_stats(results: list[dict[str, Any]], killed_at: float) -> dict[str, Any]:
    """Times from the SIGKILL of A until its players noticed, and had room_state and hand
    again from B."""
    moved = [f for r in results for f in r["failover"]]
    errors: dict[str, int] = defaultdict(int)
    for f in moved:
        if f.get("error") or "state_at" not in f:
            errors[str(f.get("error") or "no room_state")] += 1

    def since(key: str) -> dict[str, Any]:
        return summarize_ms([(f[key] - killed_at) * 1000 for f in moved if key in f])

    return {"players": len(moved), "resumed": sum(1 for f in moved if "state_at" in f),
            "disconnect_seen_ms": since("disconnect_at"), "room_state_ms": since("state_at"),
            "hand_ms": since("hand_at"), "errors": dict(errors)}


def latency_over_time(cfg: Config, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ack RTT statistics per window: does the latency drift while the game goes on?"""
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


def merge_delivery(results: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    kinds: dict[str, list[float]] = defaultdict(list)
    for res in results:
        for kind, samples in res["delivery"].get(phase, {}).items():
            kinds[kind].extend(samples)
    return {kind: summarize_ms(samples) for kind, samples in sorted(kinds.items())}


def assemble(cfg: Config, rss: dict[str, int], marks: dict[str, dict[str, float]],
             samples: list[dict[str, float]], results: list[dict[str, Any]],
             video_stats: list[dict[str, Any]], started_all: float) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    for phase, (a, b) in cfg.spans:
        wall = marks[b]["t"] - marks[a]["t"]
        rounds = sum(r["rounds"].get(phase, 0) for r in results)
        merged = merge_clients(results, phase)
        in_phase = [s for s in samples if marks[a]["t"] < s["t"] <= marks[b]["t"]]
        per_second = [cpu_between(x, y)["server_cpu_pct"] for x, y in
                      zip([marks[a], *in_phase], in_phase, strict=False)]
        cpu = cpu_between(marks[a], marks[b])
        server_s = marks[b]["server"] - marks[a]["server"]
        redis_s = marks[b]["redis"] - marks[a]["redis"]
        client_cpu = [round(100 * r["cpu_s"][phase] / wall, 1) for r in results]
        ours = cpu["server_cpu_pct"] + cpu["render_cpu_pct"] + cpu["redis_cpu_pct"]
        phases[phase] = {
            "seconds": round(wall, 2),
            "rounds": rounds,
            "rounds_per_s": round(rounds / wall, 2),
            "acked_events_per_s": round(merged["acks"]["all"].get("n", 0) / wall, 1),
            **merged,
            "delivery_ms": merge_delivery(results, phase),
            **cpu,
            "server_cpu_s": round(server_s, 2),
            "redis_cpu_s": round(redis_s, 2),
            "server_cpu_pct_peak_1s": max(per_second, default=math.nan),
            "client_cpu_pct": client_cpu,
            # whatever else ran on the machine meanwhile (other users' jobs, the kernel)
            "other_cpu_pct": round(cpu["machine_busy_cpu_pct"] - ours - sum(client_cpu), 1),
            "client_loop_lag_ms": [r["loop_lag_ms"].get(phase, {}) for r in results],
            "ping_ms": next(r["ping_ms"].get(phase, {}) for r in results if r["proc"] == 0),
            "server_cpu_ms_per_round": round(1000 * server_s / rounds, 2)
            if rounds else math.nan,
            "server_redis_cpu_ms_per_round": round(1000 * (server_s + redis_s) / rounds, 2)
            if rounds else math.nan,
            "rounds_per_server_cpu_s": round(rounds / server_s, 1) if server_s else math.nan,
            "rounds_per_server_redis_cpu_s": round(rounds / (server_s + redis_s), 1)
            if server_s + redis_s else math.nan,
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
    targets = []
    for phase, what in (("paced", "paced play"), ("flat", "flat out (saturated)")):
        if phase not in phases:
            continue
        stats = phases[phase]["acks"]["all"]
        targets.append({
            "metric": f"{cfg.label}: p99 ack round trip, {clients} clients, {what}",
            "value": stats.get("p99_ms", math.nan), "unit": "ms", "op": "<",
            "target": TARGET_P99_MS, "met": stats.get("p99_ms", math.inf) < TARGET_P99_MS,
            "detail": f"{phases[phase]['rounds_per_s']} rounds/s, server CPU "
                      f"{phases[phase]['server_cpu_pct']} %"})
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


def run(quick: bool = False, cfg: Config | None = None,
        only: list[str] | None = None) -> dict[str, Any]:
    """Every scenario with the same load (`quick`: 10 rooms, short phases); `only`: just the
    scenarios with these labels."""
    if cfg is None:
        cfg = quick_config() if quick or SCALE < 0.5 else Config()
    chosen = scenarios(cfg)
    if only:
        unknown = set(only) - {s.label for s in chosen}
        if unknown:
            raise ValueError(f"unknown scenario(s) {sorted(unknown)}; "
                             f"known: {[s.label for s in chosen]}")
        chosen = [s for s in chosen if s.label in only]
    started = time.monotonic()
    runs: dict[str, Any] = {}
    for scenario in chosen:
        print(f"running {scenario.label}: {scenario.instances} instance(s) ...", flush=True)
        try:
            runs[scenario.label] = run_config(scenario)
        except Exception as exc:  # the other scenarios still say something
            runs[scenario.label] = {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
            print(f"  {scenario.label} failed: {type(exc).__name__}: {str(exc)[:300]}",
                  flush=True)
    targets = []
    for label, res in runs.items():
        if "error" in res:
            targets.append({"metric": f"{label}: p99 ack round trip, paced play",
                            "value": None, "unit": "ms", "op": "<", "target": TARGET_P99_MS,
                            "met": False, "detail": "not measured: " + res["error"][:120]})
            if label in (WIN_EMBEDDED, WIN_EXTERNAL):
                targets.append(winners_target(label, None, res["error"]))
        else:
            targets.extend(res["targets"])
    return {"config": {**asdict(cfg), "clients": cfg.clients,
                       "nproc": len(os.sched_getaffinity(0))},
            "scenarios": runs, "targets": targets,
            "duration_s": round(time.monotonic() - started, 1)}


def _fmt(stats: dict[str, Any] | None, key: str, digits: int = 1) -> str:
    value = (stats or {}).get(key)
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def print_summary(results: dict[str, Any]) -> None:
    """Compact on purpose: docs/benchmarks.md shows the last 120 lines of it."""
    cfg = results["config"]
    print(f"{cfg['rooms']} rooms × {cfg['players']} players = {cfg['clients']} clients in "
          f"{cfg['client_procs']} client process(es); paced {cfg['paced_seconds']} s (think "
          f"{cfg['think']} s), flat out {cfg['flat_seconds']} s; SPECULATIVE_RENDER="
          f"{str(cfg['speculative']).lower()}, VIDEO_RENDER_WORKERS={cfg['render_workers']} per "
          f"process; {cfg['nproc']} cores shared by clients, servers, workers and Redis")
    runs = results["scenarios"]
    ok = {label: r for label, r in runs.items() if "error" not in r}
    games = {label: r for label, r in ok.items() if "winners" not in r}  # with a flat out
    for label, r in runs.items():
        if "error" in r:
            print(f"{label}: FAILED — {r['error'][:300]}")
    for phase, title in (("paced", "paced play"), ("flat", "flat out")):
        print(f"\n{title}: ack round trip (ms), rounds, server CPU")
        print(f"  {'scenario':15s} {'rounds/s':>8s} {'p50':>6s} {'p90':>6s} {'p99':>6s} "
              f"{'max':>6s} {'srv CPU%':>8s} {'redis%':>6s} {'render%':>7s} {'client%':>7s} "
              f"{'ms srv/rnd':>10s} {'+redis':>6s} {'rnd/srv-s':>9s} {'rnd/(srv+redis)-s':>17s}")
        rows = {label: r for label, r in ok.items() if phase in r["phases"]}
        for label, r in rows.items():
            p = r["phases"][phase]
            a = p["acks"]["all"]
            print(f"  {label:15s} {p['rounds_per_s']:>8.1f} {_fmt(a, 'p50_ms'):>6s} "
                  f"{_fmt(a, 'p90_ms'):>6s} {_fmt(a, 'p99_ms'):>6s} {_fmt(a, 'max_ms'):>6s} "
                  f"{p['server_cpu_pct']:>8.1f} {p['redis_cpu_pct']:>6.1f} "
                  f"{p['render_cpu_pct']:>7.1f} {sum(p['client_cpu_pct']):>7.1f} "
                  f"{_fmt(p, 'server_cpu_ms_per_round', 2):>10s} "
                  f"{_fmt(p, 'server_redis_cpu_ms_per_round', 2):>6s} "
                  f"{_fmt(p, 'rounds_per_server_cpu_s'):>9s} "
                  f"{_fmt(p, 'rounds_per_server_redis_cpu_s'):>17s}")
        for label, r in rows.items():
            p = r["phases"][phase]
            ping = p["ping_ms"]
            top = p.get("other_processes", [])[:1]
            print(f"    {label}: bare round trip p50 {_fmt(ping, 'p50_ms')} / p99 "
                  f"{_fmt(ping, 'p99_ms')} ms; machine busy {p['machine_busy_cpu_pct']} %, "
                  + (f"workers {p['workers_cpu_pct']} %, " if p.get("workers_cpu_pct") else "")
                  + f"not ours {p['other_cpu_pct']} %"
                  + "".join(f" (top {row['cpu_pct']} % {row['cmd'][:40]})" for row in top)
                  + f"; client lag p99 "
                  f"{max((x.get('p99_ms', 0) for x in p['client_loop_lag_ms']), default=0)}"
                  f" ms; errors {p['errors'] or 'none'}")
    print("\nRedis commands per round (INFO commandstats over the phase / rounds), busiest first")
    for label, r in games.items():
        for phase in ("paced", "flat"):
            per = r["phases"][phase].get("redis_calls_per_round") or {}
            if per:
                print(f"  {label:15s} {phase:5s} {per['all']} in all: " + ", ".join(
                    f"{k} {v}" for k, v in list(per.items())[1:7]))
    print("\ndelivery: a player's submit_cards emit → another player's room_state showing it (ms)")
    for label, r in games.items():
        for phase in ("paced", "flat"):
            kinds = r["phases"][phase]["delivery_ms"]
            print(f"  {label:15s} {phase:5s} " + "; ".join(
                f"{kind} p50 {_fmt(s, 'p50_ms')} / p99 {_fmt(s, 'p99_ms')} / max "
                f"{_fmt(s, 'max_ms')} (n {s.get('n', 0)})" for kind, s in kinds.items()))
    for label, r in ok.items():
        f = r.get("failover")
        if f:
            print(f"\nfailover ({label}): SIGKILL of instance A with {f['players']} players; "
                  f"{f['resumed']} got room_state again from B")
            for key, what in (("disconnect_seen_ms", "disconnect seen"),
                              ("room_state_ms", "room_state from B"), ("hand_ms", "hand from B")):
                s = f[key]
                print(f"  {what:18s} p50 {_fmt(s, 'p50_ms')} / p99 {_fmt(s, 'p99_ms')} / max "
                      f"{_fmt(s, 'max_ms')} ms after the SIGKILL")
            print(f"  errors: {f['errors'] or 'none'}")
    print("\nRedis MEMORY USAGE per room (bytes): room hash + history list")
    for label, r in games.items():
        for when, m in r.get("redis_memory", {}).items():
            if m:
                print(f"  {label:15s} {when:5s} {m['rooms']} rooms: hash {m['room_bytes']}, "
                      f"history {m['history_bytes']} ({m['history_rounds']} rounds) → "
                      f"{m['per_room_bytes']} per room; used_memory "
                      f"{m['used_memory'] / 1048576:.1f} MiB")
    print("\nserver VmRSS (MiB, all instances) idle / connected / dealt / end; set-up; shutdown")
    for label, r in ok.items():
        rss = r["memory"]["rss_kib"]
        acks = r["setup"]["acks"]
        downs = "; ".join(
            "SIGKILLed (failover)" if sd.get("sigkilled") else
            f"{'graceful' if sd.get('graceful') else 'HUNG, killed'} {sd.get('seconds')} s"
            + (f", orphans {len(sd['orphans_killed'])}" if sd.get("orphans_killed") else "")
            for sd in r.get("server_shutdown", []))
        print(f"  {label:15s} " + " / ".join(f"{rss[k] / 1024:.1f}" for k in
                                             ("idle", "connected", "dealt", "end"))
              + f"; {r['memory']['per_room_kib']} KiB/room; create p99 "
                f"{_fmt(acks.get('create_room'), 'p99_ms')}, join p99 "
                f"{_fmt(acks.get('join_room'), 'p99_ms')} ms; shutdown {downs} "
                f"({r['duration_s']} s in all)")
    on, off = ok.get("redis ×1"), ok.get(NO_BATCH)
    if on and off:
        print("\nadaptive batching of the async cache (issue 15), one instance on Redis: "
              "default CACHE_BATCH_MAX_KEYS (on) against 0 (off), same load")
        for phase in ("paced", "flat"):
            cells = []
            for name, r in (("on", on), ("off", off)):
                p = r["phases"][phase]
                cells.append(f"{name}: ack p99 {_fmt(p['acks']['all'], 'p99_ms')} ms, "
                             f"{p['rounds_per_s']} rounds/s, "
                             f"{_fmt(p, 'rounds_per_server_cpu_s')} rounds/server CPU-s")
            print(f"  {phase:5s} " + " | ".join(cells))
    wins = {label: r["winners"] for label, r in ok.items() if "winners" in r}
    if wins:
        print("\nwinners delivered (issue 12): paced play, then a drain until every round_won "
              "has its video_ready (at most 300 s)")
        for label, w in wins.items():
            t = w["win_to_ready_s"]
            print(f"  {label:15s} {w['delivered']}/{w['wins']} delivered ({w['delivered_pct']} %),"
                  f" {w['failed']} video_failed; win → video_ready p50 {t['p50']} s, p95 "
                  f"{t['p95']} s, max {t['max']} s; last video {w['drain_s']} s after play "
                  f"ended{' (GAVE UP at the bound)' if w['gave_up'] else ''}; CPU s: web "
                  f"{w['server_cpu_s']}, embedded renders {w['embedded_render_cpu_s']}, "
                  f"external workers {w['worker_cpu_s']}")
            if w["failed_reasons"] or w["examples_missing"]:
                print(f"    failed: {w['failed_reasons'] or 'none'}; missing e.g. "
                      f"{w['examples_missing'] or 'none'}")
    print()
    for t in results["targets"]:
        verdict = "met " if t["met"] else "MISS"
        value = "n/a" if t["value"] is None else f"{t['value']:.1f}"
        print(f"[{verdict}] {t['metric']}: {value} {t['unit']} (target {t['op']} "
              f"{t['target']}) — {t['detail']}")
    print(f"({results['duration_s']} s in all)")


def parse_args(argv: list[str] | None = None
               ) -> tuple[Config, bool, Path | None, list[str]]:
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
    p.add_argument("--scenario", action="append", default=[], metavar="LABEL",
                   help="run only this scenario (repeatable, or comma-separated labels, e.g. "
                        "'redis ×2'); default: all")
    a = p.parse_args(argv)
    only = [label.strip() for arg in a.scenario for label in arg.split(",") if label.strip()]
    base = quick_config() if a.quick else d
    cfg = Config(rooms=a.rooms or base.rooms, players=a.players, client_procs=a.client_procs,
                 paced_seconds=a.paced_seconds or base.paced_seconds,
                 flat_seconds=a.flat_seconds or base.flat_seconds, think=a.think,
                 speculative=a.speculative, render_workers=a.render_workers,
                 narration=a.narration, log_level=a.log_level)
    return cfg, a.no_write, a.output, only


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg, no_write, output, only = parse_args(argv)
    result = run(cfg=cfg, only=only)
    print_summary(result)
    if output is not None:
        output.write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"\nwrote {output}")
    elif not no_write:
        print(f"\nwrote {write_results(NAME, result)}")
    return result


if __name__ == "__main__":
    main()
