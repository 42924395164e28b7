"""The REST routes, in-process (create_app + ASGITransport), against a real redis-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cache.keys import key_for
from app.core.config import Settings
from app.services.video_cache import VideoCache
from tests.api.conftest import MakeClient
from tests.support.redis_server import free_port


async def test_starts_with_redis(make_client: MakeClient, redis_url: str,
                                 caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client(redis_url=redis_url)
    health = (await client.get("/health")).json()
    assert health["cache"] == "redis"
    stats = (await client.get("/api/cache/stats")).json()
    assert stats["cache_type"] == "redis"
    assert stats["total_entries"] == 0
    metrics = (await client.get("/metrics")).text
    assert "punchline_cache_redis_connected 1.0" in metrics
    assert "✅ Connected to Redis for video caching" in caplog.text


async def test_starts_without_redis(make_client: MakeClient,
                                    caplog: pytest.LogCaptureFixture) -> None:
    dead = f"redis://:hunter2-secret@127.0.0.1:{free_port()}"
    client = await make_client(redis_url=dead)
    assert (await client.get("/health")).json()["cache"] == "memory"
    assert (await client.get("/api/cache/stats")).json()["cache_type"] == "memory"
    assert "⚠️  Redis connection failed: " in caplog.text
    assert "Error 111 connecting" in caplog.text  # uvloop words it "Connection refused"
    assert "⚠️  Falling back to in-memory cache" in caplog.text
    assert "hunter2-secret" not in caplog.text


async def test_admin_delete_needs_a_token(make_client: MakeClient, redis_url: str) -> None:
    client = await make_client(redis_url=redis_url, admin_token="t0ken-for-tests")
    url, params = "/api/cache/entry", {"black": "b", "white": ["w"]}
    assert (await client.delete(url, params=params)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.delete(url, params=params, headers=wrong)).status_code == 401
    good = {"Authorization": "Bearer t0ken-for-tests"}
    response = await client.delete(url, params=params, headers=good)
    assert response.status_code == 200
    assert response.json()["deleted"] is False
    bad = await client.delete(url, params={"black": "", "white": ["w"]}, headers=good)
    assert bad.status_code == 422


async def test_admin_operations_disabled_without_token(make_client: MakeClient) -> None:
    client = await make_client(admin_token="")
    response = await client.delete("/api/cache/entry", params={"black": "b", "white": ["w"]},
                                   headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_disabled"
    assert "ADMIN_TOKEN" in response.json()["error"]["message"]


async def test_video_lookup_route(make_client: MakeClient, redis_url: str,
                                  tmp_path: Path) -> None:
    writer = VideoCache(Settings(_env_file=None, redis_url=redis_url, data_dir=tmp_path / "w"))
    writer.set("Why _?", ["Because"], "/videos/abc.mp4", permanent=True)
    writer.set("_ and _.", ["Because", "reasons"], "/videos/def.mp4", permanent=True)
    writer.close()
    client = await make_client(redis_url=redis_url)
    found = await client.get("/api/videos", params={"black": "Why _?", "white": ["Because"]})
    assert found.status_code == 200
    body = found.json()
    assert body["video_url"] == "/videos/abc.mp4"
    assert body["permanent"] is True
    assert body["key"] == key_for("Why _?", ["Because"])
    two = {"black": "_ and _.", "white": ["Because", "reasons"]}
    assert (await client.get("/api/videos", params=two)).json()["video_url"] == "/videos/def.mp4"
    reversed_order = {"black": "_ and _.", "white": ["reasons", "Because"]}
    missing = await client.get("/api/videos", params=reversed_order)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "video_not_found"
    for params in ({"black": "Why _?"}, {"black": " ", "white": ["x"]},
                   {"black": "b", "white": ["x"] * 11}, {"black": "b", "white": [""]},
                   {"black": "b", "white": ["  "]}):
        response = await client.get("/api/videos", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_request"


async def test_decks_and_video_stats(client) -> None:
    decks = (await client.get("/api/decks")).json()["decks"]
    assert decks and decks[0]["id"] == "punchline-cc0"
    stats = await client.get("/api/video/stats")
    assert stats.status_code == 200 and isinstance(stats.json(), dict)
