"""Three browsers play a full game through the UI alone (role and label locators, no socket
shortcuts): one of them at phone size, every winner's video plays on every page, a reload keeps
the seat, no JavaScript error anywhere, and axe-core finds nothing serious on any screen."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.app_server import AppServer
from tests.web.conftest import SHOTS, JsErrors, axe_violations, wait_for_video

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert page.viewport_size is not None and width <= page.viewport_size["width"], width


def check_screen(page: Page, screen: str, seen: list[str]) -> None:
    """The first time a screen shows: no horizontal scrolling at either size, no serious axe
    violation; with PUNCHLINE_SCREENSHOTS=dir, a screenshot of it at both sizes."""
    if screen in seen:
        return
    seen.append(screen)
    own = page.viewport_size
    assert own is not None
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        no_horizontal_scroll(page)
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{screen}-{size}.png"), full_page=True)
    page.set_viewport_size(own)
    assert axe_violations(page) == [], screen


def form(page: Page, name: str) -> Locator:
    return page.get_by_role("form", name=name)


def test_three_browsers_play_a_full_game(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    url = web_server.base_url + "/"
    pages: dict[str, Page] = {}
    for name, viewport in (("Ada", DESKTOP), ("Bo", PHONE), ("Cy", DESKTOP)):
        context = browser.new_context(viewport=viewport)
        pages[name] = js_errors.watch(context.new_page(), name)
    ada, bo, cy = pages["Ada"], pages["Bo"], pages["Cy"]
    seen: list[str] = []

    # Home: Ada creates a room with a short score limit, set from the settings.
    ada.goto(url)
    create = form(ada, "New game")
    create.get_by_label("Your name").fill("Ada")
    check_screen(ada, "home", seen)
    create.get_by_text("Settings").click()
    create.get_by_label("Points to win").fill("2")
    create.get_by_role("button", name="Create room").click()
    expect(ada.get_by_role("heading", name="Lobby")).to_be_visible()
    link = ada.get_by_label("Invite link").input_value()
    code = re.fullmatch(r".*/\?room=([A-Z0-9]{5})", link)
    assert code is not None, link

    # Bo follows the invite link on a phone: the code is filled in.
    bo.goto(link)
    join = form(bo, "Join a game")
    expect(join.get_by_label("Room code")).to_have_value(code.group(1))
    check_screen(bo, "home-invited", seen)
    join.get_by_label("Your name").fill("Bo")
    join.get_by_role("button", name="Join room").click()
    expect(ada.get_by_role("list", name="Players").get_by_role("listitem")).to_have_count(2)
    # The host starts changing a setting (update_settings) while Cy joins: the typing survives.
    ada.get_by_text("Room settings").click()
    ada.get_by_label("Seconds to submit").fill("300")
    # Cy types the code by hand.
    cy.goto(url)
    join = form(cy, "Join a game")
    join.get_by_label("Your name").fill("Cy")
    join.get_by_label("Room code").fill(code.group(1).lower())
    join.get_by_role("button", name="Join room").click()
    for page in pages.values():
        expect(page.get_by_role("list", name="Players").get_by_role("listitem")).to_have_count(3)
        check_screen(page, "lobby-host" if page is ada else "lobby", seen)
    expect(ada.get_by_label("Seconds to submit")).to_have_value("300")
    expect(ada.get_by_label("Seconds to submit")).to_be_focused()
    ada.get_by_role("button", name="Save settings").click()
    expect(bo.get_by_text("300 s to submit")).to_be_visible()
    ada.get_by_role("button", name="Start game").click()

    win_to_video: list[float] = []
    reloaded = False
    for rnd in range(1, 20):
        for page in pages.values():
            expect(page.get_by_role("heading", name=f"Round {rnd}")).to_be_visible()
        expect(ada.get_by_role("timer")).to_have_text(re.compile(r"\d+ s left"))
        czar_name = next(n for n, p in pages.items()
                         if p.get_by_text("You are the czar this round.").is_visible())
        czar = pages[czar_name]
        check_screen(czar, "czar-waiting", seen)
        players = [p for n, p in pages.items() if n != czar_name]
        pick_text = players[0].get_by_text(re.compile(r"^Pick \d$"))
        pick = int(pick_text.inner_text()[-1]) if pick_text.count() else 1
        if not reloaded:
            # A reload keeps the seat: back in the same round, hand and name.
            player = players[0]
            player.reload()
            expect(player.get_by_role("heading", name=f"Round {rnd}")).to_be_visible()
            expect(player.get_by_role("group", name="Your hand")).to_be_visible()
            reloaded = True
        for n, page in enumerate(players):
            hand = page.get_by_role("group", name="Your hand")
            cards = hand.get_by_role("button")
            for i in range(pick):  # by keyboard: the re-render keeps the focus on the card
                cards.nth(i).focus()
                page.keyboard.press("Space")
                expect(cards.nth(i)).to_have_attribute("aria-pressed", "true")
                expect(cards.nth(i)).to_be_focused()
            if pick > 1:  # the order of the blanks is shown on the chosen cards
                expect(page.locator(".order")).to_have_text([str(i + 1) for i in range(pick)])
            check_screen(page, "hand", seen)
            page.get_by_role("button", name="Submit").click()
            if n == 0:  # the last one's submission reveals them all at once
                expect(page.get_by_text("Submitted. Waiting")).to_be_visible()
                check_screen(page, "submitted", seen)
        subs = czar.get_by_role("group", name="Submissions").get_by_role("button")
        expect(subs).to_have_count(2)
        check_screen(players[0], "judging-player", seen)
        subs.first.click()
        check_screen(czar, "judging", seen)
        # Keyboard: the confirm button is reachable and works with Enter.
        czar.get_by_role("button", name="Pick winner").focus()
        czar.keyboard.press("Enter")
        won_at = time.monotonic()
        for page in pages.values():
            expect(page.locator("#reveal h2")).to_have_text(re.compile(rf"wins round {rnd}$"))
            wait_for_video(page, web_server)
            win_to_video.append(time.monotonic() - won_at)
            check_screen(page, "reveal", seen)
        if ada.get_by_role("heading", name="Game over").is_visible():
            break
    else:
        pytest.fail("no game over")
    for page in pages.values():
        expect(page.get_by_role("heading", name="Game over")).to_be_visible()
        check_screen(page, "game-over-host" if page is ada else "game-over", seen)
    expect(ada.get_by_role("button", name="Play again")).to_be_visible()
    expect(bo.get_by_role("button", name="Play again")).to_have_count(0)
    ada.get_by_role("button", name="Play again").click()
    for page in pages.values():  # a new game: round 1 again, scores back to 0
        expect(page.get_by_role("heading", name="Round 1")).to_be_visible()
        scores = page.get_by_role("region", name=re.compile("Scores")).get_by_role("listitem")
        expect(scores).to_have_text([re.compile(r"\D0$")] * 3)
    p50, worst = statistics.median(win_to_video), max(win_to_video)
    print(f"win to playing video: p50 {p50:.2f} s, max {worst:.2f} s")  # noqa: T201


def test_first_load_weight_and_time_to_interactive(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    """First load of `/` (empty cache): bytes transferred, and the time until the home screen
    answers (its forms are built after the deck list came back, next to the socket opening)."""
    context = browser.new_context(viewport=PHONE)
    page = js_errors.watch(context.new_page(), "first load")
    page.goto(web_server.base_url + "/")
    expect(page.get_by_role("button", name="Create room")).to_be_enabled()
    page.wait_for_function("() => document.body.dataset.connected === 'true'")
    ready_ms = page.evaluate("() => performance.now()")
    transferred = page.evaluate(
        "() => [...performance.getEntriesByType('navigation'), "
        "...performance.getEntriesByType('resource')]"
        ".reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0)")
    print(f"first load: {transferred / 1024:.1f} KiB, interactive after {ready_ms:.0f} ms")  # noqa: T201
    assert transferred <= 150 * 1024
    assert ready_ms < 3000
    context.close()
