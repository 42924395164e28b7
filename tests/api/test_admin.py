"""The operator page at /admin, in-process: login form, signed cookie, dashboard, take-down."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from app.api.admin import COOKIE, csrf_token, session_valid, sign_session
from app.core.cards import Combination
from tests.api.conftest import MakeClient
from tests.api.test_winners import HOSTILE, win
from tests.support.app_server import MAKE_RUN_COMMAND, run_app_server

TOKEN = "s3cret-admin-token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await client.post("/admin/login", data={"token": token})


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def with_cookie(value: str) -> dict[str, str]:
    """The cookie sent by hand (a jar would pick what to send by its own rules)."""
    return {"Cookie": f"{COOKIE}={value}"}


def no_token_in_urls(response: httpx.Response, token: str = TOKEN) -> None:
    for r in [*response.history, response]:
        assert token not in str(r.url)
        assert token not in r.headers.get("location", "")
        assert token not in r.text


async def test_disabled_without_a_token(make_client: MakeClient) -> None:
    client = await make_client(admin_token="")
    page = await client.get("/admin")
    assert page.status_code == 403
    assert "Admin is disabled" in page.text
    assert (await sign_in(client, "")).status_code == 403
    assert (await client.get("/admin/stats.json")).json()["error"]["code"] == "admin_disabled"


async def test_login_form(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    page = await client.get("/admin")
    assert page.status_code == 200
    assert '<form method="post" action="/admin/login">' in page.text
    assert '<label for="token">Admin token</label>' in page.text
    assert '<input id="token" name="token" type="password"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text


async def test_wrong_token_is_a_401_page_without_cookie(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    for wrong in ("nope", TOKEN + "x", TOKEN.upper(), "", "s3cret-admin-tokén"):
        response = await sign_in(client, wrong)
        assert response.status_code == 401, wrong
        assert "Wrong admin token" in response.text
        assert not set_cookies(response)
    assert "Admin token" in (await client.get("/admin")).text
    assert (await client.get("/admin/stats.json")).status_code == 401


async def test_right_token_sets_a_strict_cookie_and_shows_the_dashboard(
        make_client: MakeClient, redis_url: str) -> None:
    client = await make_client(admin_token=TOKEN, redis_url=redis_url)
    response = await sign_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    [header] = set_cookies(response)
    morsel = SimpleCookie(header)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "strict"
    assert morsel["path"] == "/admin"
    assert morsel["secure"] == ""  # plain http here; see the https test
    assert int(morsel["max-age"]) == 12 * 3600
    assert TOKEN not in header
    page = await client.get("/admin")
    no_token_in_urls(page)
    assert page.status_code == 200
    text = page.text
    assert "<dt>Cache type</dt><dd>redis</dd>" in text
    assert "<dt>Breaker</dt><dd>closed</dd>" in text
    assert "<dt>Pending replay</dt><dd>0</dd>" in text
    assert "<dt>Render queue (in flight)</dt><dd>0</dd>" in text
    assert '<meta http-equiv="refresh" content="5;url=/admin">' in text
    assert "Winners (0)" in text
    stats = (await client.get("/admin/stats.json")).json()
    assert stats["cache"]["cache_type"] == "redis"
    assert stats["video"]["in_flight"] == 0


async def test_memory_cache_is_shown_as_such(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    await sign_in(client)
    text = (await client.get("/admin")).text
    assert "<dt>Cache type</dt><dd>memory</dd>" in text
    assert "memory only" in text


async def test_cookie_is_secure_over_https(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    client.base_url = httpx.URL("https://testserver")
    response = await sign_in(client)
    assert response.status_code == 303
    [header] = set_cookies(response)
    assert "secure" in header.lower()


async def test_tampered_and_expired_cookies_are_refused(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    await sign_in(client)
    good = client.cookies[COOKIE]
    assert session_valid(TOKEN, good)
    expires, nonce, mac = good.split(".")
    forged = [
        f"{int(expires) + 3600}.{nonce}.{mac}",  # a longer life
        f"{expires}.{nonce}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{expires}.{nonce}",
        "",
        sign_session(TOKEN, int(time.time()) - 1),  # expired
        sign_session("another-token", int(time.time()) + 3600),
    ]
    client.cookies.clear()
    for value in forged:
        page = await client.get("/admin", headers=with_cookie(value))
        assert page.status_code == 200
        assert "Admin token" in page.text and "Cache type" not in page.text, value
        if value:
            assert any(h.startswith(f"{COOKIE}=\"\"") or h.startswith(f"{COOKIE}=;")
                       for h in set_cookies(page)), value  # cleared
        stats = await client.get("/admin/stats.json", headers=with_cookie(value))
        assert stats.status_code == 401
    assert "Cache type" in (await client.get("/admin", headers=with_cookie(good))).text


async def test_changing_the_token_signs_everyone_out(make_client: MakeClient) -> None:
    old = await make_client(admin_token=TOKEN)
    await sign_in(old)
    cookie = old.cookies[COOKIE]
    assert "Cache type" in (await old.get("/admin")).text
    new = await make_client(admin_token="a-brand-new-token")
    page = await new.get("/admin", headers=with_cookie(cookie))
    assert "Admin token" in page.text and "Cache type" not in page.text
    assert (await new.get("/admin/stats.json", headers=with_cookie(cookie))).status_code == 401
    assert "Cache type" in (await old.get("/admin", headers=with_cookie(cookie))).text


async def test_logout_clears_the_cookie(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    await sign_in(client)
    csrf = csrf_of((await client.get("/admin")).text)
    response = await client.post("/admin/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert COOKIE not in client.cookies
    assert "Admin token" in (await client.get("/admin")).text


async def test_take_down_through_the_form(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    sha = await win(client, HOSTILE)
    await sign_in(client)
    page = (await client.get("/admin")).text
    assert "Winners (1)" in page
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)" in page
    assert f'name="id" value="{sha}"' in page
    csrf = csrf_of(page)

    # Refused, nothing changed: no form token, a wrong one, another site, no session.
    refusals = [
        ({"id": sha}, {}, 403),
        ({"id": sha, "csrf": csrf[:-1]}, {}, 403),
        ({"id": sha, "csrf": csrf}, {"Origin": "https://evil.example"}, 403),
    ]
    for data, headers, status in refusals:
        response = await client.post("/admin/takedown", data=data, headers=headers)
        assert response.status_code == status, data
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with anonymous:
        response = await anonymous.post("/admin/takedown", data={"id": sha, "csrf": csrf})
        assert response.status_code == 401
    assert (await client.get(f"/w/{sha}")).status_code == 200

    response = await client.post("/admin/takedown", data={"id": sha, "csrf": csrf},
                                 headers={"Origin": "http://testserver"})
    assert response.status_code == 200
    assert f"Taken down: {sha}" in response.text
    assert "Winners (0)" in response.text
    assert (await client.get(f"/w/{sha}")).status_code == 404
    assert sha not in (await client.get("/api/winners")).text
    again = await client.post("/admin/takedown", data={"id": sha, "csrf": csrf})
    assert again.status_code == 404
    assert "no such winner" in again.text


async def test_csrf_token_is_bound_to_the_session(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    sha = await win(client, Combination("Why _?", ["Because."]))
    other = sign_session(TOKEN, int(time.time()) + 3600)
    await sign_in(client)
    response = await client.post("/admin/takedown",
                                 data={"id": sha, "csrf": csrf_token(TOKEN, other)})
    assert response.status_code == 403
    assert (await client.get(f"/w/{sha}")).status_code == 200


async def test_login_from_another_site_is_refused(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    for origin in ("https://evil.example", "http://testserver.evil.example", "null"):
        response = await client.post("/admin/login", data={"token": TOKEN},
                                     headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert not set_cookies(response)
    # The same host over https (a TLS proxy in front) is this site.
    same = await client.post("/admin/login", data={"token": TOKEN},
                             headers={"Origin": "https://testserver"})
    assert same.status_code == 303


async def test_bad_forms_are_refused(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    as_json = await client.post("/admin/login", json={"token": TOKEN})
    assert as_json.status_code == 400 and not set_cookies(as_json)
    big = await client.post("/admin/login", content=b"token=" + b"x" * 5000, headers=FORM)
    assert big.status_code == 413 and not set_cookies(big)


async def test_wrong_token_limit_applies_to_the_form(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, admin_auth_failure_limit="3/minute")
    for _ in range(2):
        assert (await sign_in(client, "wrong")).status_code == 401
    # The bearer API shares the counter: its wrong token is the third.
    bearer = await client.delete("/api/winners/" + "0" * 64,
                                 headers={"Authorization": "Bearer wrong"})
    assert bearer.status_code == 401
    blocked = await sign_in(client)  # even the right token, until the window passes
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "too many wrong admin tokens" in blocked.text
    assert not set_cookies(blocked)
    api = await client.delete("/api/winners/" + "0" * 64,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 429


@pytest.mark.slow
def test_real_server_sign_in_and_dashboard(redis_url: str, tmp_path: Path) -> None:
    """Under uvicorn (`make run`'s command), as a browser would: Origin set, cookie kept."""
    env = {"REDIS_URL": redis_url, "ADMIN_TOKEN": TOKEN}
    with run_app_server(tmp_path, env, command=MAKE_RUN_COMMAND) as server, \
            httpx.Client(base_url=server.base_url, follow_redirects=True) as browser:
        origin = {"Origin": server.base_url}
        assert "Admin token" in browser.get("/admin").text
        page = browser.post("/admin/login", data={"token": TOKEN}, headers=origin)
        no_token_in_urls(page)
        assert page.status_code == 200 and str(page.url) == f"{server.base_url}/admin"
        assert "<dt>Cache type</dt><dd>redis</dd>" in page.text
        header = page.history[0].headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/admin" in header
        out = browser.post("/admin/logout", data={"csrf": csrf_of(page.text)}, headers=origin)
        assert "Admin token" in out.text
    assert TOKEN not in server.log


async def test_page_views_count_against_the_admin_rate(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, http_rate_limit_admin="3/minute")
    await sign_in(client)
    codes = [(await client.get("/admin")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    stats = await client.get("/admin/stats.json")
    assert stats.status_code == 429 and stats.json()["error"]["code"] == "rate_limited"
