"""Readable errors and notices in the browser: unknown room, taken name, kick, a player leaving
mid-game (the round is voided and the game pauses), all driven through the UI."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.app_server import AppServer
from tests.web.conftest import JsErrors, axe_violations

pytestmark = pytest.mark.slow


def join(page: Page, url: str, name: str, code: str) -> None:
    page.goto(url)
    form = page.get_by_role("form", name="Join a game")
    form.get_by_label("Your name").fill(name)
    form.get_by_label("Room code").fill(code)
    form.get_by_role("button", name="Join room").click()


def test_errors_kick_and_pause_are_told_in_words(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    url = web_server.base_url + "/"
    names = ("Ada", "Bo", "Cy", "Dee")
    ada, bo, cy, dee = (js_errors.watch(browser.new_context().new_page(), n) for n in names)
    # Keyboard only: type the name, Tab to the button, Enter.
    ada.goto(url)
    ada.get_by_role("form", name="New game").get_by_label("Your name").focus()
    ada.keyboard.type("Ada")
    ada.keyboard.press("Tab")  # the settings' summary
    ada.keyboard.press("Tab")
    ada.keyboard.press("Enter")
    expect(ada.get_by_role("heading", name="Lobby")).to_be_visible()
    code = ada.get_by_label("Invite link").input_value()[-5:]

    join(dee, url, "Dee", "AAAAA")
    expect(dee.get_by_text("No room has that code.")).to_be_visible()
    join(bo, url, "Bo", code)
    join(dee, url, "bo", code)
    expect(dee.get_by_text("already has that name")).to_be_visible()
    assert axe_violations(dee) == []  # the error notice too
    join(cy, url, "Cy", code)
    join(dee, url, "Dee", code)
    players = ada.get_by_role("list", name="Players").get_by_role("listitem")
    expect(players).to_have_count(4)

    ada.get_by_role("button", name="Remove Dee").click()
    expect(dee.get_by_text("The host removed you from the room.")).to_be_visible()
    expect(dee.get_by_role("button", name="Join room")).to_be_visible()
    expect(players).to_have_count(3)

    ada.get_by_role("button", name="Start game").click()
    expect(bo.get_by_role("heading", name="Round 1")).to_be_visible()
    cy.get_by_role("button", name="Leave room").click()
    expect(cy.get_by_role("button", name="Create room")).to_be_visible()
    for page in (ada, bo):
        expect(page.get_by_text("Fewer than 3 players are left")).to_be_visible()
        expect(page.get_by_text("Game paused: fewer than 3 players.")).to_be_visible()
        expect(page.get_by_role("heading", name="Game paused")).to_be_visible()
    ada.get_by_role("button", name="Start game").click()
    expect(ada.get_by_text("At least 3 players are needed to start.")).to_be_visible()
