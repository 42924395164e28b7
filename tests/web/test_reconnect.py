"""A dropped network shows the "Reconnecting…" banner and puts the player back in the seat."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.app_server import AppServer
from tests.web.conftest import SHOTS, JsErrors

pytestmark = pytest.mark.slow


def test_a_dropped_network_shows_the_banner_then_the_seat_comes_back(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    context = browser.new_context()
    page = js_errors.watch(context.new_page(), "Ada")
    page.goto(web_server.base_url + "/")
    page.get_by_role("form", name="New game").get_by_label("Your name").fill("Ada")
    page.get_by_role("button", name="Create room").click()
    expect(page.get_by_role("heading", name="Lobby")).to_be_visible()
    banner = page.get_by_text("Reconnecting…")
    expect(banner).to_be_hidden()
    context.set_offline(True)
    expect(banner).to_be_visible(timeout=15_000)
    expect(page.locator("body")).to_have_attribute("data-connected", "false")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "reconnecting-desktop.png"))
    context.set_offline(False)
    expect(banner).to_be_hidden(timeout=15_000)
    expect(page.get_by_role("list", name="Players").get_by_text("Ada (you)")).to_be_visible()
    expect(page.get_by_role("button", name="Start game")).to_be_visible()
    context.close()
