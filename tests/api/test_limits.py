"""Hostile clients over HTTP: admin auth never 500s, rate limits answer 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import MakeClient
from tests.api.test_errors import assert_error

ENTRY = {"black": "b", "white": ["w"]}
TOKEN = "t0ken-for-tests"


@pytest.mark.parametrize("header", [
    "Bearer Äx".encode(),  # UTF-8 bytes: hmac.compare_digest on str raised TypeError (500)
    "Bearer Ä".encode("latin-1"),
    b"Bearer \xff\xfe",
    b"Bearer",
    b"Bearer ",
    b"bearer",
    b"Basic dXNlcjpwdw==",
    b"Token t0ken-for-tests",
    b"t0ken-for-tests",
    b"Bearer t0ken-for-tests-and-more",
    b"Bearer t0ken-for-test",
    b"",
])
async def test_malformed_or_wrong_admin_header_is_401(make_client: MakeClient,
                                                      header: bytes) -> None:
    client = await make_client(admin_token=TOKEN)
    response = await client.delete("/api/cache/entry", params=ENTRY,
                                   headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_non_ascii_admin_token_works_when_it_is_the_token(
        make_client: MakeClient) -> None:
    client = await make_client(admin_token="Äx-tøken")
    good = await client.delete("/api/cache/entry", params=ENTRY,
                               headers={"Authorization": "Bearer Äx-tøken".encode()})
    assert good.status_code == 200


async def test_wrong_admin_tokens_are_slowed_down(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, admin_auth_failure_limit="3/minute")
    wrong = {"Authorization": "Bearer guess"}
    codes = [(await client.delete("/api/cache/entry", params=ENTRY, headers=wrong)).status_code
             for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    # Once locked out, even the right token waits: guessing can't probe for success.
    locked = await client.delete("/api/cache/entry", params=ENTRY,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert_error(locked, 429, "rate_limited")
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    # Another address is not locked out.
    other = await make_client(client_address="10.9.8.7", admin_token=TOKEN)
    assert (await other.delete("/api/cache/entry", params=ENTRY,
                               headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200


async def test_admin_routes_are_rate_limited(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, http_rate_limit_admin="2/minute")
    good = {"Authorization": f"Bearer {TOKEN}"}
    codes = [(await client.delete("/api/cache/entry", params=ENTRY, headers=good)).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_room_guessing_is_rate_limited_per_address(make_client: MakeClient) -> None:
    client = await make_client(http_rate_limit_rooms="5/minute")
    codes = [(await client.get(f"/api/rooms/QQQQ{c}")).status_code for c in "34679A"]
    assert codes == [404] * 5 + [429]
    refused = await client.get("/api/rooms/QQQQC")
    assert_error(refused, 429, "rate_limited")
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 60
    assert f"{retry} s" in refused.json()["error"]["message"]
    # The limit is per address and per route: others are served.
    assert (await client.get("/health")).status_code == 200


async def test_rate_limits_hold_across_instances_through_redis(make_client: MakeClient,
                                                               redis_url: str) -> None:
    first = await make_client(redis_url=redis_url, http_rate_limit_rooms="4/minute")
    second = await make_client(redis_url=redis_url, http_rate_limit_rooms="4/minute")
    codes = []
    for instance in (first, second, first, second, first):
        codes.append((await instance.get("/api/rooms/QQQQQ")).status_code)
    assert codes == [404, 404, 404, 404, 429]


async def test_rate_limits_fail_open_to_memory_when_redis_is_down(
        make_client: MakeClient) -> None:
    from tests.support.redis_server import free_port

    client = await make_client(redis_url=f"redis://127.0.0.1:{free_port()}",
                               http_rate_limit_rooms="2/minute")
    codes = [(await client.get("/api/rooms/QQQQQ")).status_code for _ in range(3)]
    assert codes == [404, 404, 429]


def test_client_address_comes_from_the_transport() -> None:
    # Guard for the tests above: httpx's ASGITransport passes `client` to the scope.
    transport = httpx.ASGITransport(app=lambda *a: None, client=("10.0.0.1", 1))
    assert transport.client == ("10.0.0.1", 1)


async def test_oversized_request_heads_are_refused(make_client: MakeClient) -> None:
    client = await make_client(http_max_header_bytes=16384)
    assert (await client.get("/health", headers={"X-Pad": "a" * 15000})).status_code == 200
    big = await client.get("/health", headers={"X-Pad": "a" * 17000})
    assert_error(big, 431, "header_too_large")
    many = await client.get("/health", headers=[(f"X-{i}", "a" * 100) for i in range(200)])
    assert many.status_code == 431
    sio = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"},
                           headers={"X-Pad": "a" * 17000})
    assert sio.status_code == 431  # Socket.IO sits behind the same bound
