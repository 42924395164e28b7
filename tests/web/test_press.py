"""A broadcast that arrives while a player holds a card pressed (Space or the mouse) must not
swallow the press: re-rendering would replace the pressed button, and the browser then drops the
click. (Seen in CI: a card chosen by keyboard stayed unselected under load.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.app_server import AppServer
from tests.web.conftest import JsErrors, czar_of, seat_and_start, submit_first_cards

pytestmark = pytest.mark.slow


class RoomStates:
    """Counts the room_state packets a page's WebSocket receives."""

    def __init__(self, page: Page) -> None:
        self.page, self.count = page, 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, str) and payload.startswith('42["room_state"'):
            self.count += 1

    def wait_past(self, seen: int) -> None:
        for _ in range(500):
            if self.count > seen:
                return
            self.page.wait_for_timeout(20)  # lets Playwright deliver the page's events
        raise AssertionError("no room_state reached the page")


def test_a_broadcast_mid_press_does_not_swallow_the_press(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    url = web_server.base_url + "/"
    names = ("Ada", "Bo", "Cy", "Dee")
    pages = {n: js_errors.watch(browser.new_context().new_page(), n) for n in names}
    watched = {n: RoomStates(p) for n, p in pages.items()}
    seat_and_start(pages, url)
    czar = czar_of(pages)
    players = [n for n, p in pages.items() if p is not czar]
    presser, *others = players
    page, states = pages[presser], watched[presser]
    cards = page.get_by_role("group", name="Your hand").get_by_role("button")

    # Space held on a card while another player's submission re-renders the page.
    cards.nth(0).focus()
    seen = states.count
    page.keyboard.down(" ")
    submit_first_cards(pages[others[0]])
    states.wait_past(seen)
    page.keyboard.up(" ")
    expect(cards.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(cards.nth(0)).to_be_focused()

    # The mouse held down on another card, the same.
    cards.nth(1).hover()  # the mouse over the card's centre
    seen = states.count
    page.mouse.down()
    submit_first_cards(pages[others[1]])
    states.wait_past(seen)
    page.mouse.up()
    expect(cards.nth(1)).to_have_attribute("aria-pressed", "true")
