"""What Redis itself shows, fallback when nothing listens, and several processes sharing it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.cache.keys import key_for
from tests.cache.conftest import CacheFactory
from tests.support.redis_server import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


def redis_cli(server: RedisServer, *args: str) -> str:
    command = ["redis-cli", "-p", str(server.port), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def test_redis_cli_sees_the_spec_format(cache_factory: CacheFactory, redis_url: str,
                                        redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    cache.set("What's the secret to happiness?", ["Cats with opposable thumbs"],
              "https://video.url/abc123.mp4", permanent=True)
    cache.set("test", ["card"], "http://test.mp4", permanent=False)
    permanent_key = key_for("What's the secret to happiness?", ["Cats with opposable thumbs"])
    temporary_key = key_for("test", ["card"])

    assert sorted(redis_cli(redis_server, "KEYS", "video:*").split()) == sorted(
        [permanent_key, temporary_key])
    assert redis_cli(redis_server, "TTL", permanent_key) == "-1"
    assert 86390 <= int(redis_cli(redis_server, "TTL", temporary_key)) <= 86400
    value = json.loads(redis_cli(redis_server, "GET", permanent_key))
    assert value["video_url"] == "https://video.url/abc123.mp4"
    assert value["permanent"] is True
    assert value["created_at"].endswith("+00:00")
    assert set(value) == {"video_url", "created_at", "permanent"}


def test_total_entries_counts_only_video_keys(cache_factory: CacheFactory, redis_url: str,
                                              redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url)
    cache.set("a", ["b"], "/videos/a.mp4")
    redis_server.client().set("other:key", "x")
    assert cache.get_stats()["total_entries"] == 1


def test_redis_db_setting_selects_the_database(cache_factory: CacheFactory, redis_url: str,
                                               redis_server: RedisServer) -> None:
    cache = cache_factory(redis_url, redis_db=3)
    cache.set("a", ["b"], "/videos/a.mp4")
    assert redis_cli(redis_server, "-n", "3", "EXISTS", key_for("a", ["b"])) == "1"
    assert redis_cli(redis_server, "-n", "0", "EXISTS", key_for("a", ["b"])) == "0"


def test_fallback_when_nothing_listens(cache_factory: CacheFactory,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    cache = cache_factory(f"redis://127.0.0.1:{free_port()}")
    cache.set("a", ["b"], "/videos/a.mp4", permanent=True)
    assert cache.get("a", ["b"]) == "/videos/a.mp4"
    stats = cache.get_stats()
    assert stats["cache_type"] == "memory"
    assert stats["redis_connected"] is False
    assert stats["total_entries"] == 1
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("⚠️  Redis connection failed: ") and "refused" in m for m in messages)
    assert "⚠️  Falling back to in-memory cache" in messages


def test_wrong_password_falls_back_and_never_logs_it(
        cache_factory: CacheFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path / "auth-redis", password="s3cret-pw")
    server.start()
    try:
        caplog.set_level(logging.DEBUG)
        cache = cache_factory(f"redis://:wrong-pw-123@127.0.0.1:{server.port}")
        cache.set("a", ["b"], "/videos/a.mp4")
        stats = cache.get_stats()
        assert stats["cache_type"] == "memory"
        assert "wrong-pw-123" not in stats["redis_url"]
        assert "***" in stats["redis_url"]
        assert "wrong-pw-123" not in caplog.text
        assert "Redis connection failed" in caplog.text
        good = cache_factory(f"redis://:s3cret-pw@127.0.0.1:{server.port}")
        assert good.get_stats()["cache_type"] == "redis"
        assert "s3cret-pw" not in caplog.text
    finally:
        server.stop()


def run_python(code: str, redis_url: str, data_dir: Path) -> str:
    env = {**os.environ, "REDIS_URL": redis_url, "DATA_DIR": str(data_dir),
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_two_processes_share_one_cache(redis_url: str, tmp_path: Path) -> None:
    writer = """
        from app.services.video_cache import video_cache
        video_cache.set("shared", ["combo"], "/videos/shared.mp4", permanent=True)
        print(video_cache.get_stats()["cache_type"])
    """
    reader = """
        from app.services.video_cache import video_cache
        print(video_cache.get("shared", ["combo"]))
    """
    assert run_python(writer, redis_url, tmp_path / "one") == "redis"
    assert run_python(reader, redis_url, tmp_path / "two") == "/videos/shared.mp4"


def test_entry_survives_an_app_restart(redis_url: str, tmp_path: Path) -> None:
    first_run = """
        from app.services.video_cache import video_cache
        video_cache.set("restart", ["me"], "/videos/r.mp4", permanent=True)
    """
    second_run = """
        from app.services.video_cache import video_cache
        print(video_cache.get("restart", ["me"]), video_cache.get_stats()["total_entries"])
    """
    run_python(first_run, redis_url, tmp_path / "data")
    assert run_python(second_run, redis_url, tmp_path / "data") == "/videos/r.mp4 1"


def test_spec_snippets_run_unchanged(redis_url: str, tmp_path: Path) -> None:
    """The Python of the spec's "Cache Operations" and "Testing" sections, verbatim."""
    spec = """
        from app.services.video_cache import video_cache

        # Set video (automatic Redis or memory)
        video_cache.set(
            black_card="What's the secret to happiness?",
            white_cards=["Cats with opposable thumbs"],
            video_url="https://video.url/abc123.mp4",
            permanent=True  # No expiration
        )

        # Get video (checks Redis first, then memory)
        url = video_cache.get(
            black_card="What's the secret to happiness?",
            white_cards=["Cats with opposable thumbs"]
        )
        print(url)

        # Check if using Redis
        stats = video_cache.get_stats()
        print(stats["cache_type"])  # "redis" or "memory"

        # Set a test video
        video_cache.set("test", ["card"], "http://test.mp4", permanent=False)

        # Get it back
        url = video_cache.get("test", ["card"])
        print(url)  # "http://test.mp4"

        # Check stats
        stats = video_cache.get_stats()
        print(f"Total entries: {stats['total_entries']}")
    """
    lines = run_python(spec, redis_url, tmp_path / "data").splitlines()
    assert lines == ["https://video.url/abc123.mp4", "redis", "http://test.mp4",
                     "Total entries: 2"]
    dead = f"redis://127.0.0.1:{free_port()}"
    lines = run_python(spec, dead, tmp_path / "dead").splitlines()
    assert lines == ["https://video.url/abc123.mp4", "memory", "http://test.mp4",
                     "Total entries: 2"]
