"""Browser tests: the real server (`python -m uvicorn app.main:socket_app`) in a subprocess,
driven by Debian's Chromium through Playwright (../shared/TESTING.md, "A real browser")."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.app_server import AppServer, run_app_server

CHROMIUM = os.environ.get("PUNCHLINE_CHROMIUM", "/usr/lib/chromium/chromium-headless-shell")
SHOTS = os.environ.get("PUNCHLINE_SCREENSHOTS", "")  # a folder: screenshots of each screen
AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1, MPL-2.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (make system-deps)")
        for item in items:
            if "browser" in getattr(item, "fixturenames", ()):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(scope="module")
def browser(browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    """Replaces pytest-playwright's session-wide browser: Playwright's sync API keeps an event
    loop running on this thread while its driver lives, and pytest-asyncio cannot run an async
    test then. Stopping the driver after each module lets async tests follow in the same
    process (`pytest -n auto` mixes the directories)."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(**browser_type_launch_args)
        yield chromium
        chromium.close()


def web_env(**overrides: str) -> dict[str, str]:
    """A browser test server's environment: rooms in memory, the real LocalRenderer."""
    return {
        "APP_ENV": "test",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": "memory://",
        "VIDEO_PROVIDER": "local",
        "VIDEO_NARRATION": "false",
        "VIDEO_RENDER_WORKERS": "2",
        "PREGEN_ENABLED": "false",
        "RECONNECT_GRACE_SECONDS": "30",
        **overrides,
    }


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """One real server for the browser tests: rooms in memory, the real LocalRenderer."""
    with run_app_server(tmp_path_factory.mktemp("web"), web_env()) as server:
        yield server


class JsErrors:
    """Every uncaught exception and console error of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page, who: str) -> Page:
        page.on("pageerror", lambda exc: self.errors.append(f"{who}: pageerror {exc}"))
        page.on("console", lambda msg: self.errors.append(f"{who}: console {msg.text}")
                if msg.type == "error" else None)
        return page


@pytest.fixture
def js_errors() -> Iterator[JsErrors]:
    errors = JsErrors()
    yield errors
    assert errors.errors == [], errors.errors


VIDEO_PLAYING = """() => {
  const v = document.querySelector('#reveal video');
  return v !== null && v.readyState >= 2 && v.duration > 0 && !v.paused;
}"""


def wait_for_video(page: Page, server: AppServer) -> None:
    try:
        page.wait_for_function(VIDEO_PLAYING, timeout=30_000)
    except PlaywrightTimeoutError:
        state = page.evaluate("""() => {
          const v = document.querySelector('#reveal video');
          return {reveal: document.querySelector('#reveal').innerText, video: v && {
            src: v.currentSrc, readyState: v.readyState, duration: v.duration, paused: v.paused,
            networkState: v.networkState, error: v.error && v.error.message}};
        }""")
        raise AssertionError(f"no playing video: {state}\n{server.log[-3000:]}") from None


def seat_and_start(pages: dict[str, Page], url: str) -> None:
    """Through the UI: the first page creates a room (named by its key), the others join it by
    code, the host starts the game, and every page shows round 1."""
    (host_name, host), *others = pages.items()
    host.goto(url)
    new_game = host.get_by_role("form", name="New game")
    new_game.get_by_label("Your name").fill(host_name)
    new_game.get_by_role("button", name="Create room").click()
    code = host.get_by_label("Invite link").input_value()[-5:]
    for name, page in others:
        page.goto(url)
        join = page.get_by_role("form", name="Join a game")
        join.get_by_label("Your name").fill(name)
        join.get_by_label("Room code").fill(code)
        join.get_by_role("button", name="Join room").click()
    players = host.get_by_role("list", name="Players").get_by_role("listitem")
    expect(players).to_have_count(len(pages))
    host.get_by_role("button", name="Start game").click()
    for page in pages.values():
        expect(page.get_by_role("heading", name="Round 1")).to_be_visible()


def czar_of(pages: dict[str, Page]) -> Page:
    return next(p for p in pages.values()
                if p.get_by_text("You are the czar this round.").is_visible())


def submit_first_cards(page: Page) -> None:
    """A player's turn through the UI: click as many cards as the black card picks, submit."""
    pick_text = page.get_by_text(re.compile(r"^Pick \d$"))
    cards = page.get_by_role("group", name="Your hand").get_by_role("button")
    for i in range(int(pick_text.inner_text()[-1]) if pick_text.count() else 1):
        cards.nth(i).click()
    page.get_by_role("button", name="Submit").click()


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in found]
