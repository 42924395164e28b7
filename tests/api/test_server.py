"""The real server under uvicorn: start-up with and without Redis, HTTP routes."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.app_server import run_app_server
from tests.support.redis_server import RedisServer, free_port


def test_starts_with_redis(redis_url: str, tmp_path: Path) -> None:
    with run_app_server(tmp_path, {"REDIS_URL": redis_url}) as server:
        health = httpx.get(f"{server.base_url}/health").json()
        assert health["cache"] == "redis"
        stats = httpx.get(f"{server.base_url}/api/cache/stats").json()
        assert stats["cache_type"] == "redis"
        assert stats["total_entries"] == 0
        metrics = httpx.get(f"{server.base_url}/metrics").text
        assert "punchline_cache_redis_connected 1.0" in metrics
    assert "✅ Connected to Redis for video caching" in server.log


def test_starts_without_redis(tmp_path: Path) -> None:
    dead = f"redis://:hunter2-secret@127.0.0.1:{free_port()}"
    with run_app_server(tmp_path, {"REDIS_URL": dead}) as server:
        health = httpx.get(f"{server.base_url}/health").json()
        assert health["cache"] == "memory"
        assert httpx.get(f"{server.base_url}/api/cache/stats").json()["cache_type"] == "memory"
    assert "⚠️  Redis connection failed: " in server.log
    assert "Connection refused" in server.log
    assert "⚠️  Falling back to in-memory cache" in server.log
    assert "hunter2-secret" not in server.log


def test_admin_delete_needs_a_token(redis_url: str, tmp_path: Path,
                                    redis_server: RedisServer) -> None:
    env = {"REDIS_URL": redis_url, "ADMIN_TOKEN": "t0ken-for-tests"}
    with run_app_server(tmp_path, env) as server:
        url = f"{server.base_url}/api/cache/entry"
        params = {"black": "b", "white": ["w"]}
        assert httpx.delete(url, params=params).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.delete(url, params=params, headers=wrong).status_code == 401
        good = {"Authorization": "Bearer t0ken-for-tests"}
        response = httpx.delete(url, params=params, headers=good)
        assert response.status_code == 200
        assert response.json()["deleted"] is False
        bad = httpx.delete(url, params={"black": "", "white": ["w"]}, headers=good)
        assert bad.status_code == 422


def test_admin_operations_disabled_without_token(redis_url: str, tmp_path: Path) -> None:
    with run_app_server(tmp_path, {"REDIS_URL": redis_url, "ADMIN_TOKEN": ""}) as server:
        response = httpx.delete(f"{server.base_url}/api/cache/entry",
                                params={"black": "b", "white": ["w"]},
                                headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403
        assert "ADMIN_TOKEN" in response.json()["detail"]


def test_video_lookup_route(redis_url: str, tmp_path: Path) -> None:
    from app.cache.keys import key_for
    from app.core.config import Settings
    from app.services.video_cache import VideoCache

    writer = VideoCache(Settings(_env_file=None, redis_url=redis_url, data_dir=tmp_path / "w"))
    writer.set("Why _?", ["Because", "reasons"], "/videos/abc.mp4", permanent=True)
    writer.close()
    with run_app_server(tmp_path, {"REDIS_URL": redis_url}) as server:
        url = f"{server.base_url}/api/videos"
        found = httpx.get(url, params={"black": "Why _?", "white": ["Because", "reasons"]})
        assert found.status_code == 200
        body = found.json()
        assert body["video_url"] == "/videos/abc.mp4"
        assert body["permanent"] is True
        assert body["key"] == key_for("Why _?", ["Because", "reasons"])
        reversed_order = {"black": "Why _?", "white": ["reasons", "Because"]}
        assert httpx.get(url, params=reversed_order).status_code == 404
        assert httpx.get(url, params={"black": "Why _?"}).status_code == 422
        assert httpx.get(url, params={"black": " ", "white": ["x"]}).status_code == 422
        assert httpx.get(url, params={"black": "b", "white": ["x"] * 11}).status_code == 422
