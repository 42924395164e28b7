"""The whole product end to end: the real server process (`python -m uvicorn
app.main:socket_app`), the real redis-server, the real LocalRenderer (PyAV), real
python-socketio clients, and plain HTTP for the videos.

A full game is played to the score limit; every round's winning combination must come back as a
`video_ready` whose URL downloads from the same server, decodes as H.264/yuv420p frame by frame,
is found by `GET /api/videos` as permanent, and is stored in Redis without a TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import redis

from app.cache.keys import key_for
from tests.e2e.conftest import ServerFactory
from tests.sockets.support import Client
from tests.support.redis_server import RedisServer
from tests.support.rooms import room_snapshot
from tests.video.mp4 import decode

pytestmark = pytest.mark.slow  # each test starts the real server; 5 to 25 s

NAMES = ["Ada", "Bo", "Cy", "Di"]
HAND_SIZE = 10
EVENT_TIMEOUT = 15.0  # generous: the box has 2 cores shared with renders and Redis
VIDEO_TIMEOUT = 25.0


def of_round(rnd: int) -> Callable[[Any], bool]:
    return lambda payload: bool(payload["round"] == rnd)


async def seat_players(
    connect: Callable[..., Any], server: Any, n: int, settings: dict[str, Any]
) -> list[Client]:
    """``n`` connected players in one new room; the first is the host."""
    players: list[Client] = [await connect(server, name) for name in NAMES[:n]]
    host = players[0]
    ack = await host.create(settings)
    assert ack["room"]["phase"] == "lobby" and ack["room"]["host_id"] == host.player_id
    for p in players[1:]:
        ack = await p.join(f"  {host.room_code.lower()} ")  # codes ignore case and spaces
        assert ack["room_code"] == host.room_code
    state = await host.wait_for(
        "room_state", lambda s: len(s["players"]) == n, timeout=EVENT_TIMEOUT
    )
    assert [p["id"] for p in state["players"]] == [p.player_id for p in players]
    return players


async def play_round(players: list[Client], rnd: int, scores: dict[str, int]) -> dict[str, Any]:
    """One round through the real server; the czar picks the trailing player's submission.

    Returns {"state", "won", "chosen"}; ``scores`` is updated.
    """
    host = players[0]
    state = await host.wait_for(
        "room_state",
        lambda s: s["round"] == rnd and s["phase"] == "submitting",
        timeout=EVENT_TIMEOUT,
    )
    czar_id, black = state["czar_id"], state["black_card"]
    pick = black["pick"]
    played: dict[tuple[str, ...], str] = {}  # white card texts -> author
    for p in players:
        hand = await p.wait_for("hand", of_round(rnd), timeout=EVENT_TIMEOUT)
        assert hand["room_code"] == host.room_code
        ids = [c["id"] for c in hand["cards"]]
        assert len(set(ids)) == len(ids)
        if p.player_id == czar_id:
            assert len(ids) == HAND_SIZE
            continue
        assert len(ids) == HAND_SIZE + black["draw"]
        cards = hand["cards"][:pick]  # `pick` cards of this player's own hand, in blank order
        ack = await p.call("submit_cards", {"card_ids": [c["id"] for c in cards]})
        assert ack == {"ok": True}, ack
        played[tuple(c["text"] for c in cards)] = p.player_id

    czar = next(p for p in players if p.player_id == czar_id)
    subs = await czar.wait_for("submissions", of_round(rnd), timeout=EVENT_TIMEOUT)
    assert subs["black_card"] == black["text"]
    assert sorted(tuple(s["cards"]) for s in subs["submissions"]) == sorted(played)
    judging = await czar.wait_for(
        "room_state", lambda s: s["round"] == rnd and s["phase"] == "judging", timeout=EVENT_TIMEOUT
    )
    assert judging["submissions"] == subs["submissions"]

    # The czar crowns the non-czar with the lowest score (seat order breaks ties), so that the
    # game lasts several rounds and the winner is known in advance.
    target = min(
        (pid for pid in played.values()), key=lambda pid: (scores[pid], pid_seat(players, pid))
    )
    chosen = next(s for s in subs["submissions"] if played[tuple(s["cards"])] == target)
    not_czar = next(p for p in players if p.player_id != czar_id)
    refused = await not_czar.call("pick_winner", {"submission_id": chosen["submission_id"]})
    assert refused["ok"] is False and refused["error"]["code"] == "not_czar"
    ack = await czar.call("pick_winner", {"submission_id": chosen["submission_id"]})
    assert ack == {"ok": True}, ack

    scores[target] += 1
    for p in players:  # the whole room hears it
        won = await p.wait_for("round_won", of_round(rnd), timeout=EVENT_TIMEOUT)
        assert won["winner"]["player_id"] == target
        assert won["winner"]["name"] == NAMES[pid_seat(players, target)]
        assert won["black_card"] == black["text"]
        assert won["white_cards"] == chosen["cards"]
        assert won["scores"] == scores
    return {"state": state, "won": won, "chosen": chosen, "submissions": subs["submissions"]}


def pid_seat(players: list[Client], player_id: str) -> int:
    return next(i for i, p in enumerate(players) if p.player_id == player_id)


def check_mp4(path: Path) -> None:
    """H.264 in yuv420p, and every frame of every packet decodes, uncorrupted."""
    video = decode(path)  # raises if a frame cannot be decoded
    assert video.codec == "h264", video
    assert video.pix_fmt == "yuv420p", video
    assert video.width > 0 and video.height > 0 and video.duration > 0, video
    assert video.frames > 0, video
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        declared = stream.frames
        decoded = 0
        for packet in container.demux(stream):
            for frame in packet.decode():
                assert not frame.is_corrupt, f"frame {decoded} of {path.name} is corrupt"
                assert (frame.width, frame.height) == (video.width, video.height)
                assert frame.format.name == "yuv420p"
                decoded += 1
    assert decoded == video.frames
    if declared:  # the MP4's sample table says how many frames there are
        assert decoded == declared, (decoded, declared)


async def check_video(
    http: httpx.AsyncClient, redis_client: redis.Redis, tmp_path: Path, ready: dict[str, Any]
) -> None:
    black, whites, url = ready["black_card"], ready["white_cards"], ready["video_url"]
    assert url.startswith("/videos/") and url.endswith(".mp4"), url
    # The file, over HTTP from the same server.
    response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert len(response.content) > 1000
    path = tmp_path / f"round{ready['round']}.mp4"
    path.write_bytes(response.content)
    await asyncio.to_thread(check_mp4, path)
    # The lookup route knows it, permanently.
    found = await http.get("/api/videos", params={"black": black, "white": whites})
    assert found.status_code == 200, found.text
    body = found.json()
    key = key_for(black, whites)
    assert body["video_url"] == url
    assert body["permanent"] is True
    assert body["key"] == key
    # And so does Redis: the key is there, with no expiry.
    assert redis_client.exists(key) == 1
    assert redis_client.ttl(key) == -1


@pytest.mark.parametrize(
    ("n_players", "score_limit", "speculative"),
    [(3, 2, "false"), (4, 2, "true")],
    ids=["3-players-render-on-win", "4-players-speculative-render"],
)
async def test_full_game_every_winner_gets_a_video(
    app_server: ServerFactory,
    connect: Callable[..., Any],
    redis_server: RedisServer,
    tmp_path: Path,
    n_players: int,
    score_limit: int,
    speculative: str,
) -> None:
    server = app_server(SPECULATIVE_RENDER=speculative)
    players = await seat_players(
        connect, server, n_players, {"score_limit": score_limit, "hand_size": HAND_SIZE}
    )
    host = players[0]
    non_host = players[1]
    refused = await non_host.call("start_game")
    assert refused["ok"] is False and refused["error"]["code"] == "not_host"
    assert await host.call("start_game") == {"ok": True}

    scores = {p.player_id: 0 for p in players}
    rounds: list[dict[str, Any]] = []
    czars: list[str] = []
    while max(scores.values()) < score_limit:
        played = await asyncio.wait_for(play_round(players, len(rounds) + 1, scores), 60)
        rounds.append(played)
        czars.append(played["state"]["czar_id"])
    assert len(rounds) >= score_limit
    seats = [p.player_id for p in players]
    assert czars == [seats[i % len(seats)] for i in range(len(czars))]  # the czar rotates

    # game_over at the score limit, to everyone.
    winner_id = max(scores, key=lambda pid: scores[pid])
    for p in players:
        over = await p.wait_for("game_over", timeout=EVENT_TIMEOUT)
        assert over["winner"]["player_id"] == winner_id
        assert over["scores"] == scores
        assert over["scores"][winner_id] == score_limit
        final = await p.wait_for(
            "room_state", lambda s: s["phase"] == "game_over", timeout=EVENT_TIMEOUT
        )
        assert final["winner_id"] == winner_id and final["scores"] == scores
    late = await players[2].call("submit_cards", {"card_ids": ["punchline-cc0:w:0"]})
    assert late["ok"] is False and late["error"]["code"] == "wrong_phase"

    # Every round's winner leads to a video for the whole room.
    redis_client = redis_server.client()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
        room = (await http.get(f"/api/rooms/{host.room_code}")).json()
        assert room["phase"] == "game_over" and room["scores"] == scores
        urls = set()
        for played in rounds:
            rnd, won = played["state"]["round"], played["won"]
            for p in players:
                ready = await p.wait_for("video_ready", of_round(rnd), timeout=VIDEO_TIMEOUT)
                assert ready["black_card"] == won["black_card"]
                assert ready["white_cards"] == won["white_cards"]
            assert not any(f["round"] == rnd for p in players for f in p.all("video_failed"))
            await check_video(http, redis_client, tmp_path, ready)
            urls.add(ready["video_url"])
        assert len(urls) == len(rounds)  # one distinct video per winning combination
        stats = (await http.get("/api/video/stats")).json()
        assert stats["provider"] == "local" and stats["failures"] == 0, stats
        if speculative == "true":
            # A winner whose speculative render was still queued went first, at winner
            # priority (the render queue, docs/videos.md); one that was done was promoted.
            # Either way each combination was rendered once (below) and ended permanent.
            # The losing combinations were rendered too, as temporary entries, unless the
            # queue dropped their speculative order under pressure (never a winner's).
            revealed = sum(len(played["submissions"]) for played in rounds)

            def dropped(stats: dict[str, Any]) -> int:
                return int(stats["queue"]["priorities"]["speculative"]["dropped"])

            async def all_settled() -> dict[str, Any]:
                while True:
                    stats: dict[str, Any] = (await http.get("/api/video/stats")).json()
                    if stats["generations"] + dropped(stats) >= revealed \
                            and stats["in_flight"] == 0:
                        return stats
                    await asyncio.sleep(0.1)

            stats = await asyncio.wait_for(all_settled(), VIDEO_TIMEOUT)
            # A dropped speculative order whose combination then won was rendered as the
            # winner: it counts on both sides.
            assert revealed <= stats["generations"] + dropped(stats) <= revealed + len(rounds)
            assert stats["failures"] == 0, stats
            rendered = 0
            for played in rounds:
                for sub in played["submissions"]:
                    if sub["submission_id"] == played["chosen"]["submission_id"]:
                        continue
                    key = key_for(played["state"]["black_card"]["text"], sub["cards"])
                    ttl = redis_client.ttl(key)
                    assert ttl == -2 or 0 < ttl <= 86_400, key  # dropped, or temporary
                    rendered += ttl > 0
            assert rendered == stats["generations"] - len(rounds)  # the rest were winners
        else:  # one render per winner, none ahead of time
            assert stats["generations"] == len(rounds), stats
            assert stats["joined"] == stats["promotions"] == 0, stats
    redis_client.close()
    assert "Traceback" not in server.log, server.log


async def test_reconnect_with_token_gets_the_hand_back(
    app_server: ServerFactory, connect: Callable[..., Any]
) -> None:
    server = app_server(SPECULATIVE_RENDER="false")
    players = await seat_players(connect, server, 3, {"score_limit": 3})
    host = players[0]
    assert await host.call("start_game") == {"ok": True}
    state = await host.wait_for("room_state", lambda s: s["round"] == 1, timeout=EVENT_TIMEOUT)
    # A non-czar who is not the host drops out.
    leaver = next(p for p in players[1:] if p.player_id != state["czar_id"])
    hand = await leaver.wait_for("hand", of_round(1), timeout=EVENT_TIMEOUT)
    await leaver.close()
    await host.wait_for(
        "room_state",
        lambda s: any(p["id"] == leaver.player_id and not p["connected"] for p in s["players"]),
        timeout=EVENT_TIMEOUT,
    )

    # A new connection with the token takes the seat back, hand included.
    again: Client = await connect(server, "again", token=leaver.token)
    back = await again.wait_for("room_state", of_round(1), timeout=EVENT_TIMEOUT)
    me = next(p for p in back["players"] if p["id"] == leaver.player_id)
    assert me["connected"] and me["name"] == leaver.name and me["score"] == 0
    hand2 = await again.wait_for("hand", of_round(1), timeout=EVENT_TIMEOUT)
    assert hand2["room_code"] == host.room_code
    assert sorted(c["id"] for c in hand2["cards"]) == sorted(c["id"] for c in hand["cards"])
    assert all("token" not in str(s) for s in again.all("room_state"))
    await host.wait_for(
        "room_state", lambda s: all(p["connected"] for p in s["players"]), timeout=EVENT_TIMEOUT
    )
    # The seat plays: the new connection submits from the hand it got back.
    pick = state["black_card"]["pick"]
    ack = await again.call("submit_cards", {"card_ids": [c["id"] for c in hand2["cards"][:pick]]})
    assert ack == {"ok": True}, ack
    # A token whose seat does not exist is told so, and may still create a room.
    stranger: Client = await connect(server, "stranger", token="not-a-real-token")
    expired = await stranger.wait_for("error", timeout=EVENT_TIMEOUT)
    assert expired["code"] == "session_expired"
    assert (await stranger.call("create_room", {"name": "Stranger"}))["ok"]


async def test_bad_payloads_get_error_acks_and_change_nothing(
    app_server: ServerFactory, connect: Callable[..., Any]
) -> None:
    server = app_server(SPECULATIVE_RENDER="false")
    players = await seat_players(connect, server, 3, {"score_limit": 2})
    host = players[0]

    before = await room_snapshot(server.base_url, host.room_code)
    bad: list[tuple[str, Any, str]] = [
        ("create_room", {"name": "Ada", "extra": 1}, "invalid_payload"),
        ("create_room", "Ada", "invalid_payload"),
        ("create_room", {"name": "Ada", "settings": {"score_limit": "7"}}, "invalid_payload"),
        ("join_room", {"room_code": host.room_code}, "invalid_payload"),
        ("start_game", {"now": True}, "invalid_payload"),
        ("submit_cards", {"card_ids": "punchline-cc0:w:0"}, "invalid_payload"),
        ("pick_winner", {"submission_id": 7}, "invalid_payload"),
        ("kick_player", [], "invalid_payload"),
        ("no_such_event", {}, "unknown_event"),
    ]
    for event, payload, code in bad:
        ack = await players[1].call(event, payload)
        assert ack["ok"] is False, (event, payload, ack)
        assert ack["error"]["code"] == code, (event, payload, ack)
        assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
    # Well-formed but against the rules.
    ack = await players[1].call("submit_cards", {"card_ids": ["punchline-cc0:w:0"]})
    assert ack["ok"] is False and ack["error"]["code"] == "wrong_phase", ack
    ack = await players[1].call("join_room", {"room_code": host.room_code, "name": "Bo2"})
    assert ack["ok"] is False and ack["error"]["code"] == "already_in_room", ack
    # A refused event changes nothing.
    assert await room_snapshot(server.base_url, host.room_code) == before

    # The server is fine: the game starts, and a bad submission mid-round is refused too.
    assert await host.call("start_game") == {"ok": True}
    state = await host.wait_for("room_state", of_round(1), timeout=EVENT_TIMEOUT)
    player = next(p for p in players if p.player_id != state["czar_id"])
    not_mine = "punchline-cc0:w:99999"
    ack = await player.call("submit_cards", {"card_ids": [not_mine] * state["black_card"]["pick"]})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_cards", ack
    ack = await player.call("submit_cards", {"card_ids": ["x"] * 4})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
    assert "Traceback" not in server.log, server.log
