"""CORS_ORIGINS, shared by the REST routes and Socket.IO: same origin only by default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from tests.api.conftest import MakeClient

EVIL = "https://evil.example"
GOOD = "https://play.example"
HANDSHAKE = {"EIO": "4", "transport": "polling"}


async def test_default_allows_the_same_origin_only(make_client: MakeClient) -> None:
    client = await make_client()
    rest = await client.get("/health", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in rest.headers
    evil = await client.get("/socket.io/", params=HANDSHAKE, headers={"Origin": EVIL})
    assert evil.status_code == 400
    assert "access-control-allow-origin" not in evil.headers
    same = await client.get("/socket.io/", params=HANDSHAKE,
                            headers={"Origin": "http://testserver"})
    assert same.status_code == 200 and '"sid"' in same.text
    assert same.headers.get("access-control-allow-credentials") != "true"


async def test_listed_origins_are_allowed_without_credentials(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=f"{GOOD},http://localhost:5173")
    preflight = await client.options("/api/rooms/QQQQQ", headers={
        "Origin": GOOD, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == GOOD
    assert "access-control-allow-credentials" not in preflight.headers
    rest = await client.get("/api/rooms/QQQQQ", headers={"Origin": GOOD})
    assert rest.headers["access-control-allow-origin"] == GOOD
    assert "retry-after" in rest.headers["access-control-expose-headers"].lower()
    refused = await client.options("/api/rooms/QQQQQ", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in (
        await client.get("/health", headers={"Origin": EVIL})).headers

    sio_good = await client.get("/socket.io/", params=HANDSHAKE, headers={"Origin": GOOD})
    assert sio_good.status_code == 200
    assert sio_good.headers["access-control-allow-origin"] == GOOD
    assert sio_good.headers.get("access-control-allow-credentials") != "true"
    sio_evil = await client.get("/socket.io/", params=HANDSHAKE, headers={"Origin": EVIL})
    assert sio_evil.status_code == 400


@pytest.mark.parametrize("value", ["*", "https://*.example", "play.example",
                                   "https://play.example/app", "ftp://play.example"])
def test_wildcards_and_non_origins_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(_env_file=None, cors_origins=value)


def test_origins_are_read_comma_separated() -> None:
    settings = Settings(_env_file=None, cors_origins=" https://a.example/ , http://b:5173 ")
    assert settings.cors_origins == ["https://a.example", "http://b:5173"]
