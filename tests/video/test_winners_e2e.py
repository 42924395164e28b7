"""Winners reach the gallery on the real server (uvicorn subprocess, real Redis, real renders),
through the real Socket.IO path: `video_ready`, then `/api/winners`, `/w/{id}` and the poster.
A room that opted out (`public_gallery: false`) plays too and never shows up."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import ServerFactory, app_server, connect  # noqa: F401 (fixtures)
from tests.e2e.test_full_game import VIDEO_TIMEOUT, play_round, seat_players

pytestmark = pytest.mark.slow  # starts the real server and renders two videos


async def _one_game(join: Any, server: Any, public: bool) -> dict[str, Any]:
    players = await seat_players(join, server, 3, {"score_limit": 1, "hand_size": 10,
                                                     "public_gallery": public})
    assert (await players[0].call("start_game"))["ok"]
    played = await play_round(players, 1, {p.player_id: 0 for p in players})
    ready = await players[0].wait_for("video_ready", timeout=VIDEO_TIMEOUT)
    return {"code": players[0].room_code, "ready": ready, **played}


async def _listed(base: str, want: int) -> list[dict[str, Any]]:
    """The gallery, once the winner hook (after `video_ready`) has run."""
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(100):
            winners: list[dict[str, Any]] = (await http.get("/api/winners")).json()["winners"]
            if len(winners) >= want:
                return winners
            await asyncio.sleep(0.05)
    return winners


async def test_public_winners_are_shared_and_private_ones_are_not(
        app_server: ServerFactory, connect: Any) -> None:  # noqa: F811
    server = app_server(SPECULATIVE_RENDER="false")
    public = await _one_game(connect, server, True)
    private = await _one_game(connect, server, False)
    public_sha = public["ready"]["video_url"].removeprefix("/videos/").removesuffix(".mp4")
    private_sha = private["ready"]["video_url"].removeprefix("/videos/").removesuffix(".mp4")
    assert public_sha != private_sha
    winners = await _listed(server.base_url, 1)
    assert [w["id"] for w in winners] == [public_sha]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = (await http.get(f"/w/{public_sha}")).text
        assert f'property="og:video" content="{server.base_url}/videos/{public_sha}.mp4"' in page
        assert f'property="og:image" content="{server.base_url}/videos/{public_sha}.png"' in page
        assert 'name="twitter:card"' in page
        poster = await http.get(f"/videos/{public_sha}.png")
        assert Image.open(io.BytesIO(poster.content)).size == (640, 360)
        assert (await http.get(f"/w/{private_sha}")).status_code == 404
        assert "Ada" not in (await http.get("/winners")).text  # no player names
        history = (await http.get(f"/api/rooms/{private['code']}/history")).json()
        [round_one] = history["rounds"]
        assert round_one["outcome"] == "won" and round_one["video_id"] == private_sha
        assert round_one["share_url"] is None
        assert round_one["winner_name"] == private["won"]["winner"]["name"]
