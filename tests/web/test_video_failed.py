"""The reveal says "Rendering the video…" until the video's fate is known, and says so in words
when `video_failed` comes (a provider that cannot be reached, no local fallback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.support.app_server import AppServer, run_app_server
from tests.web.conftest import JsErrors, submit_first_cards, web_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = web_env(
        VIDEO_PROVIDER="http",
        HTTP_PROVIDER_SUBMIT_URL="http://127.0.0.1:9/render",  # the discard port: refused
        HTTP_PROVIDER_STATUS_URL="http://127.0.0.1:9/render/{job_id}",
        HTTP_PROVIDER_DEADLINE="3",
        HTTP_PROVIDER_FALLBACK_LOCAL="false",
        SPECULATIVE_RENDER="false",
    )
    with run_app_server(tmp_path_factory.mktemp("failing"), env) as server:
        yield server


def test_rendering_placeholder_then_failure_message(
    browser: Browser, failing_server: AppServer, js_errors: JsErrors
) -> None:
    url = failing_server.base_url + "/"
    pages = [js_errors.watch(browser.new_context().new_page(), n) for n in ("Ada", "Bo", "Cy")]
    ada = pages[0]
    ada.goto(url)
    ada.get_by_role("form", name="New game").get_by_label("Your name").fill("Ada")
    ada.get_by_role("button", name="Create room").click()
    code = ada.get_by_label("Invite link").input_value()[-5:]
    for page, name in zip(pages[1:], ("Bo", "Cy"), strict=True):
        page.goto(f"{url}?room={code}")
        form = page.get_by_role("form", name="Join a game")
        form.get_by_label("Your name").fill(name)
        form.get_by_role("button", name="Join room").click()
    expect(ada.get_by_role("list", name="Players").get_by_role("listitem")).to_have_count(3)
    ada.get_by_role("button", name="Start game").click()
    for page in pages:
        expect(page.get_by_role("heading", name="Round 1")).to_be_visible()
    czar = next(p for p in pages if p.get_by_text("You are the czar this round.").is_visible())
    for page in (p for p in pages if p is not czar):
        submit_first_cards(page)
    czar.get_by_role("group", name="Submissions").get_by_role("button").first.click()
    czar.get_by_role("button", name="Pick winner").click()
    for page in pages:
        expect(page.get_by_text("Rendering the video…")).to_be_visible()
    for page in pages:
        expect(page.get_by_text("The video could not be made this time.")).to_be_visible(
            timeout=20_000)
        expect(page.locator("#reveal video")).to_have_count(0)
    # A reload after the failure: the history gives round 1's winner and its video's address,
    # where no file is. The reveal waits, tries the address once more, then says so in words.
    again = pages[1]
    headline = again.locator("#reveal h2").inner_text()
    again.reload()
    expect(again.get_by_role("heading", name="Round 2")).to_be_visible()
    expect(again.locator("#reveal h2")).to_have_text(headline)
    expect(again.get_by_text("Rendering the video…")).to_be_visible()
    expect(again.get_by_text("The video could not be made this time.")).to_be_visible(
        timeout=15_000)
    expect(again.locator("#reveal video")).to_have_count(0)
    # Chromium's own lines for the two 404s of the missing file: not errors of ours.
    js_errors.errors[:] = [e for e in js_errors.errors if "404 (Not Found)" not in e]
