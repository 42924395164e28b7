"""A rolling restart of both instances in the middle of a 3-player game: each instance gets
SIGTERM right after a win, its players reconnect to the other with their tokens, and the game
ends with the right scores and every winner's ``video_ready``."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.cluster.conftest import Instances
from tests.cluster.test_instances import TIMEOUT, seat
from tests.sockets.support import Client, by_id, of_round, round_state, submit_all
from tests.support.app_server import AppServer

pytestmark = pytest.mark.slow  # three real instances and two real renders

VIDEO_TIMEOUT = 40.0


async def win_round(players: list[Client], rnd: int) -> dict[str, Any]:
    state = await round_state(players[0], rnd)
    await submit_all(players, state)
    czar = by_id(players, state["czar_id"])
    subs = await czar.wait_for("submissions", lambda s: s["round"] == rnd, timeout=TIMEOUT)
    ack = await czar.call("pick_winner", {"submission_id": subs["submissions"][0]["submission_id"]})
    assert ack == {"ok": True}
    won: dict[str, Any] = await players[0].wait_for("round_won", of_round(rnd), timeout=TIMEOUT)
    return won


async def move_over(players: list[Client], leaving: AppServer, to: AppServer) -> list[Client]:
    """SIGTERM ``leaving``; its players reconnect to ``to`` with their tokens."""
    leaving.process.send_signal(signal.SIGTERM)
    moved = []
    for p in players:
        if p.url != leaving.base_url:
            moved.append(p)
            continue
        again = Client(to.base_url, p.name)
        again.player_id, again.token, again.room_code = p.player_id, p.token, p.room_code
        again.received = list(p.received)  # keep what it saw: video_ready may come late
        await again.connect(token=p.token)
        await again.wait_for("hand", timeout=TIMEOUT)
        moved.append(again)
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert leaving.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in leaving.log
    return moved


async def test_rolling_restart_keeps_scores_and_every_video(
        instances: Instances, player: Any) -> None:
    a, b = instances(2, VIDEO_NARRATION="false")
    players = await seat(player, [a, b], ["Ada", "Bo", "Cy"], score_limit=2)
    await players[0].call("start_game")
    first = await win_round(players, 1)
    players = await move_over(players, a, b)  # A restarts (its replacement joins later)
    (a2,) = instances(1, VIDEO_NARRATION="false")
    second = await win_round(players, 2)
    players = await move_over(players, b, a2)
    for won in (first, second):  # rendered on whichever instance took the pick, delivered here
        for p in players:
            ready = await p.wait_for("video_ready", lambda v, r=won["round"]: v["round"] == r,
                                     timeout=VIDEO_TIMEOUT)
            assert ready["video_url"].endswith(".mp4")
    state = await players[0].wait_for("room_state", timeout=TIMEOUT)
    scores = {p["id"]: p["score"] for p in state["players"]}
    expected: dict[str, int] = {}
    for won in (first, second):
        winner = won["winner"]["player_id"]
        expected[winner] = expected.get(winner, 0) + 1
    assert {k: v for k, v in scores.items() if v} == expected
