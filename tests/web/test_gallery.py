"""The winners gallery and a share page in the browser: the meta tags that make links unfurl
are there, and the winner's video really loads and plays (issue 13, "Tests")."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.e2e.test_full_game import NAMES, VIDEO_TIMEOUT, play_round
from tests.sockets.support import Client
from tests.support.app_server import AppServer
from tests.web.conftest import JsErrors

pytestmark = pytest.mark.slow  # a real server, a real render and a browser


async def _win_one_round(base_url: str) -> str:
    """Three Socket.IO players win one round; returns the winner video's content address."""
    players = [Client(base_url, name) for name in NAMES[:3]]  # play_round checks names
    try:
        for p in players:
            await p.connect()
        await players[0].create({"score_limit": 1, "hand_size": 10})
        for p in players[1:]:
            await p.join(players[0].room_code)
        await players[0].wait_for("room_state", lambda s: len(s["players"]) == 3)
        assert (await players[0].call("start_game"))["ok"]
        await play_round(players, 1, {p.player_id: 0 for p in players})
        ready = await players[0].wait_for("video_ready", timeout=VIDEO_TIMEOUT)
        url: str = ready["video_url"]
        return url.removeprefix("/videos/").removesuffix(".mp4")
    finally:
        for p in players:
            await p.close()


def make_winner(base_url: str) -> str:
    """Runs the Socket.IO players on their own loop: Playwright's sync API owns this thread's."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["sha"] = asyncio.run(_win_one_round(base_url))
        except BaseException as exc:  # handed to the test below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(VIDEO_TIMEOUT + 30)
    if "error" in result:
        raise result["error"]
    sha: str = result["sha"]
    return sha


def test_gallery_and_share_page_unfurl_and_play(
        browser: Browser, web_server: AppServer, js_errors: JsErrors) -> None:
    sha = make_winner(web_server.base_url)
    page = js_errors.watch(browser.new_page(), "gallery")
    page.goto(f"{web_server.base_url}/winners")
    share_link = page.locator(f'a[href="/w/{sha}"]')
    share_link.first.wait_for(timeout=10_000)  # the winner hook runs just after video_ready
    assert not any(name in page.content() for name in NAMES[:3])  # no player names

    share_link.first.click()
    page.wait_for_url(f"**/w/{sha}")

    def meta(key: str) -> str | None:
        tag = page.locator(f'meta[property="{key}"], meta[name="{key}"]')
        return tag.first.get_attribute("content") if tag.count() else None

    title = meta("og:title")
    assert title and title.strip()
    assert meta("og:video") == f"{web_server.base_url}/videos/{sha}.mp4"
    assert meta("og:image") == f"{web_server.base_url}/videos/{sha}.png"
    assert meta("twitter:card")

    video = page.locator("video").first
    page.wait_for_function(
        "v => v.readyState >= 2 && v.duration > 0", arg=video.element_handle(),
        timeout=15_000)
    poster = page.request.get(f"{web_server.base_url}/videos/{sha}.png")
    assert poster.ok and poster.headers["content-type"] == "image/png"
    assert poster.body()[:8] == b"\x89PNG\r\n\x1a\n"
    page.close()
