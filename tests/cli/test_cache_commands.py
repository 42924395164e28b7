"""`python -m app.cli` cache commands against a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.cache.keys import key_for
from tests.support.redis_server import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, redis_url: str, data_dir: Path,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "DATA_DIR": str(data_dir),
           "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_stats_get_and_purge(redis_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis_server.client()
    client.set(key_for("keep", ["me"]), json.dumps(
        {"video_url": "/videos/k.mp4", "created_at": "2026-01-01T00:00:00+00:00",
         "permanent": True}))
    client.set(key_for("drop", ["me"]), json.dumps(
        {"video_url": "/videos/d.mp4", "created_at": "2026-01-01T00:00:00+00:00",
         "permanent": False}), ex=3600)

    stats = cli("stats", "--json", redis_url=redis_url, data_dir=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_entries"] == 2

    found = cli("get", "keep", "me", redis_url=redis_url, data_dir=tmp_path)
    assert found.returncode == 0 and "/videos/k.mp4" in found.stdout
    missing = cli("get", "nothing", "here", redis_url=redis_url, data_dir=tmp_path)
    assert missing.returncode == 1 and "not cached" in missing.stdout

    refused = cli("purge", "--temporary", redis_url=redis_url, data_dir=tmp_path, stdin="n\n")
    assert refused.returncode == 1
    assert client.exists(key_for("drop", ["me"])) == 1
    purged = cli("purge", "--temporary", "--yes", redis_url=redis_url, data_dir=tmp_path)
    assert purged.returncode == 0 and "deleted 1 entries" in purged.stdout
    assert client.exists(key_for("drop", ["me"])) == 0
    assert client.exists(key_for("keep", ["me"])) == 1

    one = cli("purge", "keep", "me", redis_url=redis_url, data_dir=tmp_path)
    assert one.returncode == 0 and "deleted" in one.stdout
    assert client.exists(key_for("keep", ["me"])) == 0


def test_doctor_flags_an_evicting_policy(redis_url: str, redis_server: RedisServer,
                                         tmp_path: Path) -> None:
    client = redis_server.client()
    client.config_set("maxmemory-policy", "volatile-lru")
    healthy = cli("doctor", redis_url=redis_url, data_dir=tmp_path)
    assert healthy.returncode == 0, healthy.stdout
    assert "maxmemory-policy volatile-lru" in healthy.stdout
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        risky = cli("doctor", redis_url=redis_url, data_dir=tmp_path)
        assert risky.returncode == 1
        assert "allkeys-lru can evict permanent winners" in risky.stdout
    finally:
        client.config_set("maxmemory-policy", "noeviction")


def test_doctor_reports_unreachable_redis_without_password(tmp_path: Path) -> None:
    result = cli("doctor", redis_url=f"redis://:pa55word@127.0.0.1:{free_port()}",
                 data_dir=tmp_path)
    assert result.returncode == 1
    assert "Redis unreachable" in result.stdout
    assert "pa55word" not in result.stdout + result.stderr
