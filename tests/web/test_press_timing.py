"""dom.js's press guard on a fake clock (Playwright's `page.clock`), in the real page: a render
held back by a press runs at its release, and at the latest 1 s after it was first held back;
an earlier press's limit must not cut a later press short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page

from tests.support.app_server import AppServer
from tests.web.conftest import JsErrors

pytestmark = pytest.mark.slow

SET_UP = """async () => {
  const dom = await import("/static/dom.js");  // the page's own module instance
  window.draws = 0;
  window.draw = () => { window.draws += 1; };
  window.defer = () => dom.deferWhilePressed(window.draw);
  window.press = (type) => window.dispatchEvent(new PointerEvent(type));
}"""


def draws(page: Page) -> int:
    return int(page.evaluate("() => window.draws"))


def test_a_held_render_runs_at_the_release_and_an_old_limit_does_not_cut_a_new_press(
    browser: Browser, web_server: AppServer, js_errors: JsErrors
) -> None:
    page = js_errors.watch(browser.new_context().new_page(), "clock")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    page.clock.install(time=start)
    page.goto(web_server.base_url + "/")
    # Installed, the fake clock still runs with real time: paused, it moves only by run_for
    # (a loaded machine would otherwise fire the 1 s limit early).
    page.clock.pause_at(start + timedelta(minutes=5))
    page.evaluate(SET_UP)
    assert page.evaluate("() => window.defer()") is False  # nothing pressed: draw now

    page.evaluate("() => window.press('pointerdown')")
    assert page.evaluate("() => window.defer()") is True  # held back...
    page.clock.run_for(200)
    assert draws(page) == 0
    page.evaluate("() => window.press('pointerup')")
    page.clock.run_for(1)
    assert draws(page) == 1  # ...and drawn at the release

    # A second press 300 ms after the first hold: its render is held back at 900 ms, past the
    # first hold's 1 s limit (at 1000 ms), and must still wait for its own release.
    page.clock.run_for(100)
    page.evaluate("() => window.press('pointerdown')")
    page.clock.run_for(600)
    assert page.evaluate("() => window.defer()") is True
    page.clock.run_for(200)  # 1000 ms after the first hold
    assert draws(page) == 1
    page.evaluate("() => window.press('pointerup')")
    page.clock.run_for(1)
    assert draws(page) == 2

    # A press whose release never comes (released outside the window): 1 s at most.
    page.evaluate("() => window.press('pointerdown')")
    assert page.evaluate("() => window.defer()") is True
    page.clock.run_for(999)
    assert draws(page) == 2
    page.clock.run_for(2)
    assert draws(page) == 3
