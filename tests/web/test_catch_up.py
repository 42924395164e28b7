"""Back in a seat, the latest winner is back on screen: after a reload (which forgets the reveal)
and after a drop during which the video became ready (its video_ready never reached the page)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.support.app_server import AppServer
from tests.web.conftest import (
    JsErrors,
    czar_of,
    seat_and_start,
    submit_first_cards,
    wait_for_video,
)

pytestmark = pytest.mark.slow


def test_the_latest_winner_comes_back_after_a_reload_and_after_a_drop(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    url = web_server.base_url + "/"
    contexts = {name: browser.new_context() for name in ("Ada", "Bo", "Cy")}
    pages = {name: js_errors.watch(ctx.new_page(), name) for name, ctx in contexts.items()}
    seat_and_start(pages, url)
    czar = czar_of(pages)
    players = [p for p in pages.values() if p is not czar]
    for page in players:
        submit_first_cards(page)
    czar.get_by_role("group", name="Submissions").get_by_role("button").first.click()
    czar.get_by_role("button", name="Pick winner").click()
    for page in pages.values():
        wait_for_video(page, web_server)
    headline = pages["Ada"].locator("#reveal h2").inner_text()
    assert re.fullmatch(r".+ wins round 1", headline), headline

    # A reload: the page starts from nothing, then finds its seat, round 2, and round 1's winner.
    reloaded = players[0]
    reloaded.reload()
    expect(reloaded.get_by_role("heading", name="Round 2")).to_be_visible()
    expect(reloaded.locator("#reveal h2")).to_have_text(headline)
    wait_for_video(reloaded, web_server)

    # A drop from the pick until after the video was ready: the page misses round_won and
    # video_ready, and finds both in the room's history when it is back.
    czar = czar_of(pages)
    away = next(p for p in pages.values() if p is not czar)
    for page in pages.values():
        if page is not czar:
            submit_first_cards(page)
    name_away = next(n for n, p in pages.items() if p is away)
    contexts[name_away].set_offline(True)
    expect(away.get_by_text("Reconnecting…")).to_be_visible(timeout=15_000)
    czar.get_by_role("group", name="Submissions").get_by_role("button").first.click()
    czar.get_by_role("button", name="Pick winner").click()
    expect(czar.locator("#reveal h2")).to_have_text(re.compile(r"wins round 2$"))
    wait_for_video(czar, web_server)  # rendered, and told to the room while `away` was away
    headline = czar.locator("#reveal h2").inner_text()
    expect(away.locator("#reveal h2")).to_have_text(re.compile(r"wins round 1$"))  # not told
    contexts[name_away].set_offline(False)
    expect(away.get_by_text("Reconnecting…")).to_be_hidden(timeout=15_000)
    # Chromium's own lines about the reconnection attempts made while offline: not our errors.
    js_errors.errors[:] = [e for e in js_errors.errors if "ERR_INTERNET_DISCONNECTED" not in e]
    expect(away.locator("#reveal h2")).to_have_text(headline)
    wait_for_video(away, web_server)
    for context in contexts.values():
        context.close()
